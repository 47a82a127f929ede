package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/auth"
)

func (s *server) healthz(w http.ResponseWriter, _ *http.Request, _ *auth.Principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// ReadyResponse answers /readyz.
type ReadyResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	checks := map[string]func(context.Context) error{"database": s.Store.Ping}
	for name, f := range s.Ready {
		checks[name] = f
	}
	out := ReadyResponse{Status: "ok", Checks: map[string]string{}}
	status := http.StatusOK
	for name, f := range checks {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		err := f(ctx)
		cancel()
		if err != nil {
			s.log.WarnContext(r.Context(), "readiness check failed", "check", name, "err", err)
			out.Checks[name], out.Status, status = "unavailable", "unavailable", http.StatusServiceUnavailable
		} else {
			out.Checks[name] = "ok"
		}
	}
	writeJSON(w, status, out)
	return nil
}

func (s *server) metricsHandler(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	s.Metrics.Handler().ServeHTTP(w, r)
	return nil
}

func (s *server) openAPI(w http.ResponseWriter, _ *http.Request, _ *auth.Principal) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(s.openapi)
	return err
}

//go:embed placeholder.html
var placeholderHTML []byte

// spa serves the built web app with index.html for client routes, or, when
// the app is not built, a small page that runs set-up and login.
func (s *server) spa(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	if s.spaHandler == nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		_, err := w.Write(placeholderHTML)
		return err
	}
	s.spaHandler.ServeHTTP(w, r)
	return nil
}

// SPAHandler serves files from dist, falling back to index.html for paths
// that are not files (client-side routes).
func SPAHandler(dist fs.FS) http.Handler {
	files := http.FileServerFS(dist)
	gz := &gzipCache{fs: dist}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if p != "" {
			if st, err := fs.Stat(dist, p); err == nil && !st.IsDir() {
				if strings.HasPrefix(p, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
					if gz.serve(w, r, p) {
						return
					}
				}
				files.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, dist, "index.html")
	})
}

// gzipCache serves the app's text assets gzip-compressed to clients that
// accept it, compressing each (immutable, embedded) file once.
type gzipCache struct {
	fs    fs.FS
	files sync.Map // path → []byte (gzip), or nil when not worth compressing
}

var compressible = map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml", ".json": "application/json", ".html": "text/html; charset=utf-8", ".map": "application/json"}

func (g *gzipCache) serve(w http.ResponseWriter, r *http.Request, p string) bool {
	ctype, ok := compressible[path.Ext(p)]
	if !ok || !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		return false
	}
	v, ok := g.files.Load(p)
	if !ok {
		var body []byte
		if raw, err := fs.ReadFile(g.fs, p); err == nil && len(raw) > 1024 {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			if _, err := zw.Write(raw); err == nil && zw.Close() == nil {
				body = buf.Bytes()
			}
		}
		v, _ = g.files.LoadOrStore(p, body)
	}
	body, _ := v.([]byte)
	if body == nil {
		return false
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Encoding", "gzip")
	h.Add("Vary", "Accept-Encoding")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return true
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip (not q=0).
func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
