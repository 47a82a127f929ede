// Package apitest builds the whole HTTP stack on a real store (SQLite in a
// temp dir, or a fresh PostgreSQL schema) behind an httptest server, with
// small clients for cookie and bearer calls. Other packages' tests reuse it.
package apitest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for schema set-up
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/realtime"
	"github.com/parleyhq/parley/internal/secret"
	"github.com/parleyhq/parley/internal/store"
)

// Password is the password of every user the helpers create.
const Password = "correct horse battery"

// FastParams make password hashing cheap in tests.
var FastParams = auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Options tune the stack.
type Options struct {
	Postgres bool // use PARLEY_TEST_POSTGRES_URL (the test is skipped when unset)
	Channels *channel.Registry
	// Configure may change the dependencies before the server is built
	// (add Routes, Ready checks, a Sender, limits…).
	Configure func(*httpapi.Deps)
	NoSetup   bool // do not run first-run set-up
}

// Env is a running stack.
type Env struct {
	T         testing.TB
	Server    *httptest.Server
	URL       string
	DBURL     string // the store's database URL
	Store     *store.DB
	Secrets   *secret.Box
	Metrics   *metrics.Metrics
	Deps      httpapi.Deps
	Owner     *Client // logged in with a cookie; set unless NoSetup
	OwnerUser inbox.User
	Workspace inbox.Workspace

	Hub *realtime.Hub // WebSocket hub on an in-process bus

	hub     atomic.Pointer[realtime.Hub]
	mu      sync.Mutex
	changes []inbox.Change
}

// New starts the stack and, unless opts.NoSetup, sets up a workspace whose
// owner is logged in as e.Owner.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	ctx := context.Background()
	e := &Env{T: t, Metrics: metrics.New()}
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "parley.db")
	if opts.Postgres {
		dbURL = PostgresURL(t)
	}
	e.DBURL = dbURL
	var err error
	e.Store, err = store.Open(ctx, dbURL, store.Options{OnCommit: e.record, PublicURL: "https://parley.test"})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { e.Store.Close() })
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	e.Secrets, _ = secret.New(key)
	if opts.Channels == nil {
		opts.Channels = channel.NewRegistry()
	}
	bus := realtime.NewMemoryBus(nil, 0)
	e.Hub, err = realtime.NewHub(realtime.HubOptions{Bus: bus, Changes: e.Store})
	if err != nil {
		t.Fatal(err)
	}
	e.hub.Store(e.Hub)
	e.Deps = httpapi.Deps{Store: e.Store, Metrics: e.Metrics, Secrets: e.Secrets, Channels: opts.Channels,
		PasswordParams: FastParams, PublicURL: "https://parley.test",
		Routes: httpapi.RealtimeRoutes(e.Store, e.Hub, nil)}
	if opts.Configure != nil {
		opts.Configure(&e.Deps)
	}
	e.Server = httptest.NewServer(httpapi.NewServer(e.Deps))
	t.Cleanup(e.Server.Close)
	t.Cleanup(func() { // runs before Server.Close: close sockets first
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Hub.Shutdown(ctx)
		_ = bus.Close()
	})
	e.URL = e.Server.URL
	if !opts.NoSetup {
		e.setup()
	}
	return e
}

func (e *Env) record(cs []inbox.Change) {
	e.mu.Lock()
	e.changes = append(e.changes, cs...)
	e.mu.Unlock()
	if h := e.hub.Load(); h != nil {
		h.PublishChanges(cs)
	}
}

// Changes returns the changes committed so far (via the store's OnCommit).
func (e *Env) Changes() []inbox.Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]inbox.Change(nil), e.changes...)
}

// PostgresURL creates a fresh schema in PARLEY_TEST_POSTGRES_URL's database
// (dropped at cleanup) and returns a URL using it; it skips without the variable.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("PARLEY_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("PARLEY_TEST_POSTGRES_URL is not set; skipping the PostgreSQL run")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "apitest_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err == nil {
			_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func (e *Env) setup() {
	e.T.Helper()
	c := e.NewClient()
	var out httpapi.SetupResponse
	c.MustDo("POST", "/api/v1/setup", map[string]string{"workspace": "Acme", "name": "Olive Owner",
		"email": "owner@example.com", "password": Password}, http.StatusCreated, &out)
	e.OwnerUser, e.Workspace = out.User, out.Workspace
	e.Owner = e.Login("owner@example.com", Password)
}

// WS returns the API path prefix of the env's workspace plus suffix.
func (e *Env) WS(suffix string) string { return "/api/v1/workspaces/" + e.Workspace.ID + suffix }

// NewClient returns an unauthenticated client with a cookie jar.
func (e *Env) NewClient() *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{e: e, HTTP: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// Login logs in with a cookie and keeps the CSRF token.
func (e *Env) Login(email, password string) *Client {
	e.T.Helper()
	c := e.NewClient()
	var me httpapi.MeResponse
	c.MustDo("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password}, http.StatusOK, &me)
	c.CSRF, c.User = me.CSRFToken, me.User
	return c
}

// AddMember adds a member to workspace wsID (through owner) and logs them in.
func (e *Env) AddMember(owner *Client, wsID, email string, role inbox.Role) *Client {
	e.T.Helper()
	owner.MustDo("POST", "/api/v1/workspaces/"+wsID+"/members", map[string]string{
		"email": email, "name": strings.Split(email, "@")[0], "password": Password, "role": string(role)}, http.StatusCreated, nil)
	return e.Login(email, Password)
}

// Token creates an API token in wsID for c and returns a bearer client.
func (e *Env) Token(c *Client, wsID string) *Client {
	e.T.Helper()
	var out httpapi.TokenResponse
	c.MustDo("POST", "/api/v1/workspaces/"+wsID+"/tokens", map[string]string{"name": "test"}, http.StatusCreated, &out)
	b := e.Bearer(out.Token)
	b.User = c.User
	return b
}

// Bearer returns a client authenticating with token.
func (e *Env) Bearer(token string) *Client {
	return &Client{e: e, HTTP: &http.Client{Timeout: 30 * time.Second}, Token: token}
}

// Client calls the API with a cookie session (CSRF set) or a bearer token.
type Client struct {
	e     *Env
	t     testing.TB // overrides e.T (see With)
	HTTP  *http.Client
	CSRF  string
	Token string
	User  inbox.User
}

// With returns a copy of c that reports to t (for subtests and fuzz targets).
func (c *Client) With(t testing.TB) *Client {
	cp := *c
	cp.t = t
	return &cp
}

func (c *Client) tb() testing.TB {
	if c.t != nil {
		return c.t
	}
	return c.e.T
}

// Response is a read answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Error decodes an error body.
func (r *Response) Error(t testing.TB) httpapi.ErrorDetail {
	t.Helper()
	var b httpapi.ErrorBody
	r.JSON(t, &b)
	return b.Error
}

// Do sends body (nil, []byte/string sent raw, or a value encoded as JSON).
func (c *Client) Do(method, path string, body any) *Response {
	c.tb().Helper()
	return c.DoHeaders(method, path, body, nil)
}

// DoHeaders is Do with extra headers.
func (c *Client) DoHeaders(method, path string, body any, h http.Header) *Response {
	c.tb().Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			c.tb().Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, c.e.URL+path, rd)
	if err != nil {
		c.tb().Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.CSRF != "" {
		req.Header.Set("X-CSRF-Token", c.CSRF)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.tb().Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb().Fatal(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// MustDo fails the test unless the status is want; it decodes into out when not nil.
func (c *Client) MustDo(method, path string, body any, want int, out any) *Response {
	c.tb().Helper()
	r := c.Do(method, path, body)
	if r.Status != want {
		c.tb().Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	if out != nil {
		r.JSON(c.tb(), out)
	}
	return r
}
