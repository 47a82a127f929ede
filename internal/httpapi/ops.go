package httpapi

import (
	"context"
	_ "embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if p != "" {
			if st, err := fs.Stat(dist, p); err == nil && !st.IsDir() {
				if strings.HasPrefix(p, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				files.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, dist, "index.html")
	})
}
