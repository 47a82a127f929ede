package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/httpapi/apitest"
)

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envFor(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// served is a `parley serve` run in-process by startServe.
type served struct {
	base           string
	done           chan error
	stdout, stderr *syncBuffer
}

// startServe runs `serve` with env until ctx ends and waits for its listening line.
func startServe(ctx context.Context, t *testing.T, env func(string) string) *served {
	t.Helper()
	s := &served{done: make(chan error, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	go func() { s.done <- run(ctx, []string{"serve"}, env, s.stdout, s.stderr) }()
	re := regexp.MustCompile(`listening on (http://\S+)`)
	for deadline := time.Now().Add(20 * time.Second); ; {
		if m := re.FindStringSubmatch(s.stdout.String()); m != nil {
			s.base = m[1]
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", s.stderr.String())
		}
		select {
		case err := <-s.done:
			t.Fatalf("serve exited early: %v\n%s", err, s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	env := envFor(map[string]string{"PARLEY_DATA_DIR": dir, "PARLEY_ADDR": "127.0.0.1:0", "PARLEY_LOG_FORMAT": "json"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := startServe(ctx, t, env)
	base, done, stderr := srv.base, srv.done, srv.stderr
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if resp, err = http.Get(base + "/healthz"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	if st, err := os.Stat(filepath.Join(dir, "secret.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret key not generated with 0600: %v", err)
	}

	// A request in flight when shutdown starts still completes.
	slow, err := http.NewRequest("POST", base+"/api/v1/setup", &delayedBody{delay: 300 * time.Millisecond,
		data: []byte(`{"workspace":"Acme","name":"Ann","email":"ann@example.com","password":"password1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		status int
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		r, err := http.DefaultClient.Do(slow)
		if err != nil {
			inflight <- result{0, err}
			return
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		inflight <- result{r.StatusCode, nil}
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	if r := <-inflight; r.err != nil || r.status != 201 {
		t.Fatalf("in-flight request: %d %v", r.status, r.err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still accepting after shutdown")
	}
	logs := stderr.String()
	if !strings.Contains(logs, `"msg":"stopped"`) || !strings.Contains(logs, `"request_id"`) {
		t.Fatalf("logs lack shutdown or request ids:\n%s", logs)
	}
}

// delayedBody waits before yielding its data, keeping a request in flight.
type delayedBody struct {
	delay time.Duration
	data  []byte
	slept bool
}

func (d *delayedBody) Read(p []byte) (int, error) {
	if !d.slept {
		time.Sleep(d.delay)
		d.slept = true
	}
	if len(d.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, d.data)
	d.data = d.data[n:]
	return n, nil
}

func TestSetupCommand(t *testing.T) {
	dir := t.TempDir()
	env := envFor(map[string]string{"PARLEY_DATA_DIR": dir})
	ctx := context.Background()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"setup", "--workspace", "Acme", "--email", "ann@example.com"}, env, &out, &errb); err == nil {
		t.Fatal("setup without a password succeeded")
	}
	if err := run(ctx, []string{"setup", "--workspace", "Acme", "--email", "ann@example.com", "--password", "password1", "--name", "Ann"}, env, &out, &errb); err != nil {
		t.Fatalf("setup: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), `created workspace "Acme"`) {
		t.Fatalf("output %q", out.String())
	}
	if err := run(ctx, []string{"setup", "--workspace", "B", "--email", "bob@example.com", "--password", "password1"}, env, &out, &errb); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("second setup: %v", err)
	}
	out.Reset()
	if err := run(ctx, []string{"migrate"}, env, &out, &errb); err != nil || !strings.Contains(out.String(), "applied 0 migration") {
		t.Fatalf("migrate: %v %q", err, out.String())
	}
}

func TestCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"version"}, envFor(nil), &out, &errb); err != nil || !strings.HasPrefix(out.String(), "parley ") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"help"}, envFor(nil), &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands() {
		if !strings.Contains(out.String(), c.name) {
			t.Errorf("help lacks %s", c.name)
		}
	}
	if err := run(context.Background(), []string{"frobnicate"}, envFor(nil), &out, &errb); err == nil {
		t.Fatal("unknown command accepted")
	}
	errb.Reset()
	if err := run(context.Background(), []string{"serve", "--help"}, envFor(nil), &out, &errb); err == nil || !strings.Contains(errb.String(), "PARLEY_DATABASE_URL") {
		t.Fatalf("serve --help: %v\n%s", err, errb.String())
	}
}

// TestServeCluster runs serve on PostgreSQL + NATS (the cluster configuration).
func TestServeCluster(t *testing.T) {
	nats := os.Getenv("PARLEY_TEST_NATS_URL")
	if nats == "" {
		t.Skip("PARLEY_TEST_NATS_URL is not set; skipping the cluster run")
	}
	pg := apitest.PostgresURL(t) // a fresh schema; skips without PARLEY_TEST_POSTGRES_URL
	env := envFor(map[string]string{"PARLEY_DATA_DIR": t.TempDir(), "PARLEY_ADDR": "127.0.0.1:0", "PARLEY_DATABASE_URL": pg,
		"PARLEY_NATS_URL": nats, "PARLEY_SECRET_KEY": strings.Repeat("0f", 32)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := startServe(ctx, t, env)
	base, done := srv.base, srv.done
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"bus":"ok"`) || !strings.Contains(string(b), `"database":"ok"`) {
		t.Fatalf("readyz: %d %s", resp.StatusCode, b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
