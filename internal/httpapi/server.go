// Package httpapi is Parley's HTTP API: one route table (routes.go), the
// middleware chain, JSON handlers over inbox.Store, the OpenAPI document and
// the embedded web app.
package httpapi

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/secret"
	"github.com/parleyhq/parley/web"
)

// Access is who may call a route.
type Access int

// Access levels.
const (
	Public Access = iota // anyone
	User                 // any logged-in user (cookie or bearer)
	Member               // a member of the {ws} in the path
	Admin                // an owner or admin of the {ws} in the path
)

func (a Access) String() string {
	return [...]string{"public", "user", "member", "admin"}[a]
}

// Route is one entry of the route table. Other packages add routes through
// Deps.Routes; their handlers read the caller with auth.FromContext.
type Route struct {
	Method  string
	Path    string // net/http pattern path, e.g. /api/v1/workspaces/{ws}/channels/{id}
	Access  Access
	Summary string
	// Request and Response are example values whose types document the
	// bodies in the OpenAPI document (nil: none / not JSON).
	Request  any
	Response any
	Status   int   // success status (default 200)
	MaxBody  int64 // request body limit (default Deps.MaxBodyBytes)
	Handler  http.Handler

	fn handlerFunc
}

// Pattern is the net/http mux pattern of the route.
func (rt Route) Pattern() string { return rt.Method + " " + rt.Path }

type handlerFunc func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error

// Sender queues an outbound (non-private) message. The channels work plugs
// the real pipeline in here; nil uses the store's outbox directly.
type Sender interface {
	Send(ctx context.Context, wsID string, p *auth.Principal, conv inbox.Conversation, in SendRequest) (inbox.Message, error)
}

// Deps is everything the server needs.
type Deps struct {
	Store    inbox.Store
	Logger   *slog.Logger
	Metrics  *metrics.Metrics  // nil: a fresh registry
	Secrets  *secret.Box       // seals channel/provider-account secrets (required for those routes)
	Channels *channel.Registry // known channel kinds (nil: none)
	Sender   Sender            // nil: queue to the store's outbox

	PublicURL      string // e.g. https://inbox.example.com (no trailing slash)
	SecureCookies  bool   // default: PublicURL is https
	MaxBodyBytes   int64  // default 1 MiB
	PasswordParams auth.Params
	SessionTTL     time.Duration // default 30 days
	Now            func() time.Time

	// LoginLimiter counts failed logins per email and per IP (default 5 per 15 min
	// per email, 20 per 15 min per IP).
	LoginLimiter   *auth.Limiter
	LoginIPLimiter *auth.Limiter

	// Ready checks run by /readyz besides the store's Ping (e.g. the bus).
	Ready map[string]func(context.Context) error
	// Routes are extra routes (webhooks, uploads, WebSocket, …) mounted with
	// the same middleware, auth and OpenAPI documentation.
	Routes []Route
	// WebDist is the built web app (nil: the embedded web.Dist()). Without an
	// index.html a small first-run/login page is served instead.
	WebDist fs.FS
}

type server struct {
	Deps
	log        *slog.Logger
	routes     []Route
	registered []string // mux patterns, in registration order
	openapi    []byte
	dummyOnce  sync.Once
	spaHandler http.Handler // nil: the app is not built
	dummy      string
}

// NewServer returns the whole HTTP handler.
func NewServer(deps Deps) http.Handler {
	s := newServer(deps)
	return s.handler()
}

// RouteTable returns the routes NewServer(deps) registers: the core table plus deps.Routes.
func RouteTable(deps Deps) []Route { return newServer(deps).routes }

func newServer(deps Deps) *server {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.New()
	}
	if deps.Channels == nil {
		deps.Channels = channel.NewRegistry()
	}
	if deps.MaxBodyBytes <= 0 {
		deps.MaxBodyBytes = 1 << 20
	}
	if deps.PasswordParams.Memory == 0 {
		deps.PasswordParams = auth.DefaultParams
	}
	if deps.SessionTTL <= 0 {
		deps.SessionTTL = 30 * 24 * time.Hour
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.LoginLimiter == nil {
		deps.LoginLimiter = auth.NewLimiter(5, 15*time.Minute, deps.Now)
	}
	if deps.LoginIPLimiter == nil {
		deps.LoginIPLimiter = auth.NewLimiter(20, 15*time.Minute, deps.Now)
	}
	deps.PublicURL = strings.TrimRight(deps.PublicURL, "/")
	if !deps.SecureCookies && strings.HasPrefix(deps.PublicURL, "https://") {
		deps.SecureCookies = true
	}
	if deps.WebDist == nil {
		deps.WebDist = web.Dist()
	}
	s := &server{Deps: deps, log: deps.Logger}
	if _, err := fs.Stat(deps.WebDist, "index.html"); err == nil {
		s.spaHandler = SPAHandler(deps.WebDist)
	}
	s.routes = append(s.coreRoutes(), deps.Routes...)
	s.openapi = s.buildOpenAPI()
	return s
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		mux.Handle(rt.Pattern(), s.wrap(rt))
		s.registered = append(s.registered, rt.Pattern())
	}
	// Unknown API paths and methods answer JSON, never the web app.
	noRoute := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, inbox.Errorf(inbox.NotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		mux.Handle(m+" /api/", noRoute)
	}
	return s.middleware(mux)
}
