package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/inbox"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	reqInfoKey
)

// reqInfo is filled by the inner route handler and read by the outer middleware.
type reqInfo struct {
	route  string
	userID string
	redact bool // the path carries a secret (share tokens): log the pattern only
}

// RequestID returns the request id of ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// LogHandler wraps h so records logged with a request's context carry its request_id.
func LogHandler(h slog.Handler) slog.Handler { return ridHandler{h} }

type ridHandler struct{ slog.Handler }

func (h ridHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}
func (h ridHandler) WithAttrs(a []slog.Attr) slog.Handler { return ridHandler{h.Handler.WithAttrs(a)} }
func (h ridHandler) WithGroup(n string) slog.Handler      { return ridHandler{h.Handler.WithGroup(n)} }

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush/Hijack (WebSocket upgrades).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware: request id → access log + metrics → panic recovery → mux.
func (s *server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		info := &reqInfo{}
		ctx := context.WithValue(context.WithValue(r.Context(), requestIDKey, id), reqInfoKey, info)
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(ctx, "panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if sw.status == 0 {
					s.writeError(sw, r, errors.New("panic"))
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			route := info.route
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			s.Metrics.HTTPDuration.WithLabelValues(route, metricMethod(r.Method), strconv.Itoa(status)).Observe(d.Seconds())
			path := r.URL.Path
			if info.redact {
				path = route
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method), slog.String("path", path), slog.String("route", route),
				slog.Int("status", status), slog.Int64("bytes", sw.bytes), slog.Duration("duration", d),
				slog.String("remote", clientIP(r)),
			}
			if info.userID != "" {
				attrs = append(attrs, slog.String("user_id", info.userID))
			}
			s.log.LogAttrs(ctx, slog.LevelInfo, "http request", attrs...)
		}()
		next.ServeHTTP(sw, r)
	})
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// wrap applies the per-route chain: route label, body limit, authentication,
// CSRF, workspace membership and role, path id checks, then the handler.
func (s *server) wrap(rt Route) http.Handler {
	limit := rt.MaxBody
	if limit <= 0 {
		limit = s.MaxBodyBytes
	}
	params := pathParams(rt.Path)
	scoped := strings.Contains(rt.Path, "{ws}")
	redact := strings.Contains(rt.Path, "{token}")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := r.Context().Value(reqInfoKey).(*reqInfo)
		if info != nil {
			info.route = rt.Pattern()
			info.redact = redact
		}
		if r.ContentLength > limit {
			s.writeError(w, r, inbox.Errorf(inbox.TooLarge, "request body exceeds %d bytes", limit))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		var p *auth.Principal
		if rt.Access != Public {
			var err error
			if p, err = s.authenticate(r); err != nil {
				s.writeError(w, r, err)
				return
			}
			if info != nil {
				info.userID = p.User.ID
			}
			if p.Token != nil && !scoped && !safeMethod(r.Method) {
				s.writeError(w, r, inbox.Errorf(inbox.Forbidden, "API tokens act only inside their workspace; log in to do this"))
				return
			}
			if p.Session != nil && !safeMethod(r.Method) && !auth.Equal(r.Header.Get("X-CSRF-Token"), p.Session.CSRFToken) {
				s.writeError(w, r, inbox.Errorf(inbox.Forbidden, "missing or wrong X-CSRF-Token header"))
				return
			}
		}
		for _, name := range params {
			if name == "token" {
				continue
			}
			if !validID(r.PathValue(name)) {
				s.writeError(w, r, inbox.Errorf(inbox.NotFound, "%s not found", strings.TrimSuffix(name, "_id")))
				return
			}
		}
		if scoped && p != nil {
			if err := s.resolveWorkspace(r, p, rt.Access); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		if p != nil {
			r = r.WithContext(auth.WithPrincipal(r.Context(), p))
		}
		if rt.fn != nil {
			if err := rt.fn(w, r, p); err != nil {
				s.writeError(w, r, err)
			}
			return
		}
		rt.Handler.ServeHTTP(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func pathParams(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.TrimSuffix(strings.Trim(seg, "{}"), "..."))
		}
	}
	return out
}

const sessionCookie = "parley_session"

// authenticate resolves the caller from the session cookie or a bearer token
// (Authorization header, or Sec-WebSocket-Protocol "bearer.<token>" on upgrades).
func (s *server) authenticate(r *http.Request) (*auth.Principal, error) {
	ctx := r.Context()
	unauth := inbox.Errorf(inbox.Unauthorized, "authentication required")
	token := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return nil, inbox.Errorf(inbox.Unauthorized, "malformed Authorization header")
		}
		token = strings.TrimSpace(tok)
	} else if r.Method == http.MethodGet {
		for _, proto := range r.Header.Values("Sec-WebSocket-Protocol") {
			for _, p := range strings.Split(proto, ",") {
				if t, ok := strings.CutPrefix(strings.TrimSpace(p), "bearer."); ok && t != "" {
					token = t
				}
			}
		}
	}
	if token != "" {
		t, err := s.Store.APITokenByHash(ctx, auth.HashToken(token))
		if err != nil {
			if inbox.IsCode(err, inbox.NotFound) {
				return nil, inbox.Errorf(inbox.Unauthorized, "invalid token")
			}
			return nil, err
		}
		u, err := s.Store.UserByID(ctx, t.UserID)
		if err != nil {
			if inbox.IsCode(err, inbox.NotFound) {
				return nil, unauth
			}
			return nil, err
		}
		now := s.Now()
		if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
			if err := s.Store.TouchAPIToken(ctx, t.ID, now); err != nil {
				s.log.WarnContext(ctx, "touch api token", "err", err)
			}
		}
		return &auth.Principal{User: u, Token: &t}, nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, unauth
	}
	sess, err := s.Store.SessionByHash(ctx, auth.HashToken(c.Value))
	if err != nil {
		if inbox.IsCode(err, inbox.NotFound) {
			return nil, inbox.Errorf(inbox.Unauthorized, "session expired")
		}
		return nil, err
	}
	if !sess.ExpiresAt.IsZero() && !s.Now().Before(sess.ExpiresAt) {
		return nil, inbox.Errorf(inbox.Unauthorized, "session expired")
	}
	u, err := s.Store.UserByID(ctx, sess.UserID)
	if err != nil {
		if inbox.IsCode(err, inbox.NotFound) {
			return nil, unauth
		}
		return nil, err
	}
	return &auth.Principal{User: u, Session: &sess}, nil
}

// resolveWorkspace checks membership of {ws} (404 for non-members and other
// workspaces' tokens) and the role the route needs (403).
func (s *server) resolveWorkspace(r *http.Request, p *auth.Principal, access Access) error {
	ws := r.PathValue("ws")
	notFound := inbox.Errorf(inbox.NotFound, "workspace not found")
	if p.Token != nil && p.Token.WorkspaceID != ws {
		return notFound
	}
	role, err := s.Store.MemberRole(r.Context(), ws, p.User.ID)
	if err != nil {
		if inbox.IsCode(err, inbox.NotFound) {
			return notFound
		}
		return err
	}
	p.WorkspaceID, p.Role = ws, role
	if access == Admin && !role.CanManage() {
		return inbox.Errorf(inbox.Forbidden, "this needs the admin or owner role")
	}
	return nil
}

// metricMethod is the method label of a request: a standard method, or
// OTHER (a client must not be able to create metric series at will).
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
