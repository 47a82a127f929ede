package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/ingest"
	"github.com/parleyhq/parley/internal/store"
)

// plainAdapter is a channel kind that is not QR-authorized.
type plainAdapter struct{ kind string }

func (a plainAdapter) Kind() string                                         { return a.kind }
func (plainAdapter) Verify(channel.Config, channel.Request) error           { return nil }
func (plainAdapter) Ack() (string, []byte)                                  { return "", nil }
func (plainAdapter) Rules(channel.Config) channel.Rules                     { return channel.Rules{} }
func (plainAdapter) ValidateConfig(map[string]any, map[string]string) error { return nil }
func (plainAdapter) Handshake(channel.Config, channel.Request) (int, string, bool) {
	return 0, "", false
}
func (plainAdapter) Parse(channel.Config, channel.Request) ([]channel.Event, error) { return nil, nil }
func (plainAdapter) Send(context.Context, channel.Config, channel.Outgoing) (channel.SendResult, error) {
	return channel.SendResult{}, errors.New("no")
}
func (plainAdapter) FetchMedia(context.Context, channel.Config, string) (io.ReadCloser, string, error) {
	return nil, "", errors.New("no")
}

// qrAdapter answers status checks per channel (by its config "profile_id").
type qrAdapter struct {
	plainAdapter
	mu       sync.Mutex
	state    map[string]string // profile → ProfileStatus answer; "hang" blocks, "fail" errors
	qrState  string            // AuthorizationQR's state
	statuses atomic.Int64
	qrs      atomic.Int64
}

func (a *qrAdapter) set(profile, state string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state[profile] = state
}

func (a *qrAdapter) ProfileStatus(ctx context.Context, cfg channel.Config) (string, error) {
	a.statuses.Add(1)
	a.mu.Lock()
	s := a.state[cfg.String("profile_id")]
	a.mu.Unlock()
	switch s {
	case "hang":
		<-ctx.Done()
		return "", ctx.Err()
	case "fail":
		return "", errors.New("wappi answered HTTP 502")
	}
	return s, nil
}

func (a *qrAdapter) AuthorizationQR(context.Context, channel.Config) (string, string, error) {
	a.qrs.Add(1)
	if a.qrState == "authorized" {
		return "", "authorized", nil
	}
	return "data:image/png;base64,QUJD", a.qrState, nil
}

type authEnv struct {
	db    *store.DB
	ws    string
	qr    *qrAdapter
	p     *pipeline
	chans map[string]inbox.Channel // by profile (or "plain")
}

func newAuthEnv(t *testing.T, profiles ...string) *authEnv {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "a.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, ws, err := db.Setup(ctx, inbox.SetupInput{Workspace: "W", Name: "A", Email: "a@example.com", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	e := &authEnv{db: db, ws: ws.ID, qr: &qrAdapter{plainAdapter: plainAdapter{"qrtest"}, state: map[string]string{}, qrState: "pending"},
		chans: map[string]inbox.Channel{}}
	reg := channel.NewRegistry(e.qr, plainAdapter{"plain"})
	e.p = &pipeline{db: db, channels: &ingest.Channels{Store: db, Registry: reg}, now: time.Now}
	for _, pr := range profiles {
		ch, err := db.CreateChannel(ctx, ws.ID, inbox.Channel{Kind: "qrtest", Name: pr, Config: map[string]any{"profile_id": pr}})
		if err != nil {
			t.Fatal(err)
		}
		e.chans[pr] = ch
		e.qr.set(pr, "authorized")
	}
	if e.chans["plain"], err = db.CreateChannel(ctx, ws.ID, inbox.Channel{Kind: "plain", Name: "plain"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *authEnv) channel(t *testing.T, profile string) inbox.Channel {
	t.Helper()
	ch, err := e.db.GetChannel(context.Background(), e.ws, e.chans[profile].ID)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func (e *authEnv) changes(t *testing.T) int {
	t.Helper()
	page, err := e.db.Changes(context.Background(), e.ws, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Changes)
}

// TestAuthorizationCheck: the periodic check asks every QR-authorized channel
// (only those) for its state, records a lost authorization in the channel's
// status and health, writes nothing when the state is unchanged, and one
// provider that hangs does not hold the others up.
func TestAuthorizationCheck(t *testing.T) {
	ctx := context.Background()
	e := newAuthEnv(t, "p1", "p2", "p3")
	defer func(d time.Duration) { authCheckTimeout = d }(authCheckTimeout)
	authCheckTimeout = 200 * time.Millisecond
	log := slog.New(slog.DiscardHandler)

	before := e.changes(t)
	e.p.checkAuthorizations(ctx, log)
	if got := e.qr.statuses.Load(); got != 3 {
		t.Fatalf("status checks = %d, want 3 (the QR channels only)", got)
	}
	if e.changes(t) != before || e.channel(t, "p1").UpdatedAt != e.chans["p1"].UpdatedAt {
		t.Fatal("an unchanged state must write nothing")
	}

	e.qr.set("p1", "unauthorized")
	e.qr.set("p2", "hang")
	e.qr.set("p3", "pending")
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second) // fail rather than hang
	defer cancel()
	e.p.checkAuthorizations(cctx, log)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a hanging provider held the check for %v", d)
	}
	want := map[string]string{"p1": "disconnected", "p2": "active", "p3": "pending"}
	for pr, st := range want {
		if ch := e.channel(t, pr); ch.Status != st {
			t.Errorf("%s: status %q, want %q", pr, ch.Status, st)
		}
	}
	h, err := e.db.ChannelHealth(ctx, e.ws, e.chans["p1"].ID)
	if err != nil || h.Status != "disconnected" || h.StatusDetail != "status check: unauthorized" {
		t.Fatalf("health %+v %v", h, err)
	}
	n := e.changes(t)
	e.qr.set("p2", "fail")
	e.p.checkAuthorizations(ctx, log)
	if e.changes(t) != n {
		t.Fatal("a repeated state or a failed check must write nothing")
	}
	if e.qr.qrs.Load() != 0 {
		t.Fatal("the background check must not ask for QR codes")
	}
}

// TestAuthorizationEndpoint: GET …/authorization asks the provider's status,
// shows the QR while the profile is not authorized, and records the state.
func TestAuthorizationEndpoint(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, status, qrState string
		wantState, wantCh     string
		wantQR                bool
	}{
		{"authorized: no QR asked", "authorized", "pending", "authorized", "active", false},
		{"logged out: QR to scan", "unauthorized", "pending", "unauthorized", "disconnected", true},
		{"scanning", "pending", "pending", "pending", "pending", true},
		{"status failed: the QR's state", "fail", "pending", "pending", "pending", true},
		{"logged in between the calls", "unauthorized", "authorized", "authorized", "active", false},
		{"status unknown to us: channel unchanged", "weird", "pending", "weird", "active", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newAuthEnv(t, "p")
			e.qr.set("p", tc.status)
			e.qr.qrState = tc.qrState
			out, err := e.p.authorization(ctx, e.channel(t, "p"))
			if err != nil {
				t.Fatal(err)
			}
			if !out.Required || out.State != tc.wantState || (out.QR != "") != tc.wantQR {
				t.Fatalf("got %+v", out)
			}
			if tc.status == "authorized" && e.qr.qrs.Load() != 0 {
				t.Fatal("an authorized profile needs no QR")
			}
			if ch := e.channel(t, "p"); ch.Status != tc.wantCh {
				t.Fatalf("channel status %q, want %q", ch.Status, tc.wantCh)
			}
		})
	}
	e := newAuthEnv(t)
	out, err := e.p.authorization(ctx, e.channel(t, "plain"))
	if err != nil || out.Required || e.qr.statuses.Load() != 0 {
		t.Fatalf("a channel that is not QR-authorized: %+v %v", out, err)
	}
}
