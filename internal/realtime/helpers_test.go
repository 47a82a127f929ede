package realtime

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/realtime/client"
)

const testWS = "ws1"

// dropBus wraps a Bus and drops the published messages drop selects.
type dropBus struct {
	Bus
	drop    func(subject string, data []byte) bool
	dropped atomic.Int64
}

func (b *dropBus) Publish(ctx context.Context, subject string, data []byte) error {
	if b.drop != nil && b.drop(subject, data) {
		b.dropped.Add(1)
		return nil
	}
	return b.Bus.Publish(ctx, subject, data)
}

type env struct {
	t   testing.TB
	log *memLog
	bus Bus
	hub atomic.Pointer[Hub]
	srv *httptest.Server
	// allowedOrigins for cookie-authenticated requests
	allowedOrigins []string
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("PARLEY_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func defaultOpts() HubOptions {
	return HubOptions{
		QueueSize:         256,
		HeartbeatInterval: 5 * time.Second,
		PresenceGrace:     -1,
		TypingTimeout:     time.Second,
		PollInterval:      -1,
		NodeHeartbeat:     time.Second,
		PageSize:          50,
	}
}

// newEnv starts a hub on bus (a fresh MemoryBus when nil) over a memLog
// wired as the store (OnCommit → PublishChanges) and an HTTP server whose
// /ws handler takes the principal from the query (the real server
// authenticates instead).
func newEnv(t testing.TB, o HubOptions, bus Bus) *env {
	t.Helper()
	return newEnvLog(t, o, bus, newMemLog())
}

// newEnvLog is newEnv over an existing log (a second node of a cluster).
func newEnvLog(t testing.TB, o HubOptions, bus Bus, log *memLog) *env {
	t.Helper()
	if bus == nil {
		mb := NewMemoryBus(testLogger(t), 0)
		t.Cleanup(func() { _ = mb.Close() })
		bus = mb
	}
	e := &env{t: t, log: log, bus: bus}
	e.startHub(o)
	e.log.SetOnCommit(func(cs []inbox.Change) { e.hub.Load().PublishChanges(cs) })
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p := Principal{WorkspaceID: q.Get("ws"), UserID: q.Get("user"), Role: q.Get("role"), CookieAuth: q.Get("cookie") == "1"}
		e.hub.Load().ServeWS(w, r, p, ServeOptions{Since: q.Get("since"), AllowedOrigins: e.allowedOrigins, Status: q.Get("status")})
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.hub.Load().Shutdown(ctx)
		e.srv.Close()
	})
	return e
}

func (e *env) startHub(o HubOptions) *Hub {
	e.t.Helper()
	o.Bus = e.bus
	o.Changes = e.log
	if o.Logger == nil {
		o.Logger = testLogger(e.t)
	}
	h, err := NewHub(o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.hub.Store(h)
	return h
}

func (e *env) wsURL(ws, user, role string, extra url.Values) string {
	q := url.Values{"ws": {ws}, "user": {user}, "role": {role}}
	for k, v := range extra {
		q[k] = v
	}
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws?" + q.Encode()
}

// dial connects the resuming client.
func (e *env) dial(user, role string, o client.Options) *client.Client {
	e.t.Helper()
	if o.MinBackoff == 0 {
		o.MinBackoff = 20 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 200 * time.Millisecond
	}
	c, err := client.Dial(context.Background(), e.wsURL(testWS, user, role, nil), o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// rawDial opens a plain WebSocket (no resume logic) with since.
func (e *env) rawDial(user, role, since string) *websocket.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.wsURL(testWS, user, role, url.Values{"since": {since}}), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c.SetReadLimit(1 << 24)
	e.t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func readFrame(t testing.TB, c *websocket.Conn, d time.Duration) (client.Frame, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		return client.Frame{}, err
	}
	var f client.Frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("bad frame %s: %v", b, err)
	}
	return f, nil
}

// nextOf returns the next frame of type typ, skipping others.
func nextOf(t testing.TB, c *client.Client, typ string, d time.Duration) client.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %q frame: %v", typ, err)
		}
		if f.Type == typ {
			return f
		}
	}
}

// noFrameOf checks that no frame of type typ (matching match) arrives within d.
func noFrameOf(t testing.TB, c *client.Client, typ string, d time.Duration, match func(client.Frame) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		f, err := c.Next(ctx)
		if err != nil {
			return
		}
		if f.Type == typ && (match == nil || match(f)) {
			t.Fatalf("unexpected %s frame: %+v", typ, f)
		}
	}
}

// collectSeqs reads change frames until the seq reaches upTo and returns them
// in arrival order.
func collectSeqs(t testing.TB, c *client.Client, upTo int64, d time.Duration) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var seqs []int64
	for {
		if len(seqs) > 0 && seqs[len(seqs)-1] >= upTo {
			return seqs
		}
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("after %d changes (last %v), waiting for seq %d: %v", len(seqs), lastOf(seqs), upTo, err)
		}
		if f.Type == FrameChange {
			seqs = append(seqs, f.Seq)
		}
	}
}

func lastOf(s []int64) any {
	if len(s) == 0 {
		return nil
	}
	return s[len(s)-1]
}

// checkContiguous fails unless seqs is exactly from+1 … to.
func checkContiguous(t testing.TB, name string, seqs []int64, from, to int64) {
	t.Helper()
	if int64(len(seqs)) != to-from {
		t.Fatalf("%s: got %d changes, want %d (first %v last %v)", name, len(seqs), to-from, firstOf(seqs), lastOf(seqs))
	}
	for i, s := range seqs {
		if s != from+1+int64(i) {
			t.Fatalf("%s: position %d has seq %d, want %d", name, i, s, from+1+int64(i))
		}
	}
}

func firstOf(s []int64) any {
	if len(s) == 0 {
		return nil
	}
	return s[0]
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
