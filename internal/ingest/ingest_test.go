package ingest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/store"
)

// testAdapter is a legitimate test fixture: a provider whose webhooks are
// {"events":[{"type","id","from","text","target","status","group"}]} signed
// with X-Test-Signature: hex(HMAC-SHA256(secret, body)).
type testAdapter struct {
	legacy atomic.Bool // when set, "v2" payloads are not understood (a parser bug)

	mu       sync.Mutex
	answered []string          // query ids answered (channel.Answerer)
	titles   map[string]string // group chat → title, listed by GroupInfo (channel.ChatDirectory)
	lookups  [][]string        // GroupInfo calls
}

// GroupInfo lists the titles of the wanted groups it knows.
func (a *testAdapter) GroupInfo(ctx context.Context, cfg channel.Config, chatIDs []string) ([]channel.Event, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lookups = append(a.lookups, append([]string(nil), chatIDs...))
	var out []channel.Event
	for _, id := range chatIDs {
		if t, ok := a.titles[id]; ok {
			out = append(out, channel.Event{Type: channel.EventGroupInfo, ChatID: id, IsGroup: true, GroupTitle: t})
		}
	}
	return out, nil
}

// Answer records the answered query (the adapter is a channel.Answerer).
func (a *testAdapter) Answer(ctx context.Context, cfg channel.Config, ev channel.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.answered = append(a.answered, ev.QueryID)
	return nil
}

func (a *testAdapter) answers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.answered...)
}

type testEvent struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	From   string `json:"from"`
	Text   string `json:"text"`
	Target string `json:"target"`
	Status string `json:"status"`
	Panic  bool   `json:"panic"`
	Query  string `json:"query"`
	Group  string `json:"group"` // a group chat id: the message is from a member of it
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func (a *testAdapter) Kind() string { return "jsontest" }
func (a *testAdapter) Verify(cfg channel.Config, req channel.Request) error {
	want := sign(cfg.Secret("hmac_secret"), req.Body)
	if !hmac.Equal([]byte(want), []byte(req.Header.Get("X-Test-Signature"))) {
		return inbox.Errorf(inbox.Unauthorized, "bad signature")
	}
	return nil
}
func (a *testAdapter) Handshake(cfg channel.Config, req channel.Request) (int, string, bool) {
	if c := req.Query["challenge"]; len(c) == 1 {
		return 200, c[0], true
	}
	return 0, "", false
}
func (a *testAdapter) Parse(cfg channel.Config, req channel.Request) ([]channel.Event, error) {
	var p struct {
		Version string      `json:"version"`
		Events  []testEvent `json:"events"`
	}
	if err := json.Unmarshal(req.Body, &p); err != nil {
		return nil, err
	}
	if p.Version == "v2" && a.legacy.Load() {
		return nil, errors.New("unknown payload version")
	}
	var out []channel.Event
	for _, e := range p.Events {
		if e.Panic {
			panic("parser bug")
		}
		ev := channel.Event{Type: channel.EventType(e.Type), ExternalID: e.ID, ChatID: e.From, Direction: "inbound", Kind: inbox.KindText,
			Sender: channel.Party{Identifier: e.From, Name: "User " + e.From}, Text: e.Text, TargetID: e.Target, Status: e.Status, QueryID: e.Query}
		if e.Group != "" {
			ev.ChatID, ev.IsGroup = e.Group, true
		}
		out = append(out, ev)
	}
	return out, nil
}
func (a *testAdapter) Ack() (string, []byte) { return "text/plain", []byte("ok") }
func (a *testAdapter) Send(ctx context.Context, cfg channel.Config, out channel.Outgoing) (channel.SendResult, error) {
	return channel.SendResult{}, errors.New("not used")
}
func (a *testAdapter) FetchMedia(ctx context.Context, cfg channel.Config, ref string) (io.ReadCloser, string, error) {
	return nil, "", errors.New("not used")
}
func (a *testAdapter) Rules(cfg channel.Config) channel.Rules { return channel.Rules{} }
func (a *testAdapter) ValidateConfig(config map[string]any, secrets map[string]string) error {
	return nil
}

const testSecret = "s3cret"

type env struct {
	db      *store.DB
	dbURL   string
	ws      string
	ch      inbox.Channel
	adapter *testAdapter
	chans   *Channels
	ing     *Ingest
	srv     *httptest.Server
	unver   atomic.Int64
	batches atomic.Int64 // transactions that committed webhooks
	carried atomic.Int64 // of which worker transactions
	cancel  context.CancelFunc
	workers int
	extra   []channel.Adapter // more adapters for the registry
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func openSecrets(b []byte) (map[string]string, error) {
	m := map[string]string{}
	return m, json.Unmarshal(b, &m)
}

func newEnv(t testing.TB, start bool) *env { return newEnvWorkers(t, start, 0) }

func newEnvWorkers(t testing.TB, start bool, workers int) *env {
	return newEnvURL(t, start, workers, "sqlite:"+filepath.Join(t.TempDir(), "i.db"))
}

// pgURL makes a fresh schema in the test PostgreSQL database and returns a
// URL using it (skips when PARLEY_TEST_POSTGRES_URL is unset).
func pgURL(t *testing.T) string {
	base := os.Getenv("PARLEY_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("PARLEY_TEST_POSTGRES_URL not set: skipping PostgreSQL pipeline tests")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("ing_%d", time.Now().UnixNano())
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); admin.Close() })
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

func TestPostgresPipeline(t *testing.T) {
	t.Run("concurrent webhooks, two nodes", func(t *testing.T) {
		e := newEnvURL(t, true, 0, pgURL(t))
		// A second node sharing the database processes too.
		db2, err := store.Open(context.Background(), e.dbURL, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db2.Close()
		chans2 := &Channels{Store: db2, Registry: channel.NewRegistry(e.adapter), OpenSecrets: openSecrets}
		ing2 := New(Options{DB: db2, Channels: chans2, PollInterval: 20 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		ing2.Start(ctx)
		defer func() { cancel(); ing2.Wait() }()
		const n = 150
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if st, _ := e.post(t, payload(testEvent{ID: fmt.Sprint("c", i), From: fmt.Sprint(i % 5), Text: "x"}), true); st != 200 {
					t.Errorf("status %d", st)
				}
			}(i)
		}
		wg.Wait()
		// Replays of the same webhooks are no-ops.
		for i := 0; i < 20; i++ {
			e.post(t, payload(testEvent{ID: fmt.Sprint("c", i), From: fmt.Sprint(i % 5), Text: "x"}), true)
		}
		eventually(t, "processing", e.allDone(t, n+20))
		if got := len(e.messages(t)); got != n {
			t.Fatalf("%d messages, want %d", got, n)
		}
	})
	t.Run("order within a channel", func(t *testing.T) {
		e := newEnvURL(t, true, 0, pgURL(t))
		e.post(t, payload(testEvent{ID: "m0", From: "5", Text: "v0"}), true)
		for i := 1; i <= 20; i++ {
			e.post(t, payload(testEvent{Type: "edit", Target: "m0", From: "5", Text: fmt.Sprint("v", i)}), true)
		}
		eventually(t, "processing", e.allDone(t, 21))
		if ms := e.messages(t); len(ms) != 1 || ms[0].Text != "v20" {
			t.Fatalf("%+v", ms)
		}
	})
}

func newEnvURL(t testing.TB, start bool, workers int, dbURL string) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{adapter: &testAdapter{}, dbURL: dbURL}
	db, err := store.Open(ctx, e.dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	_, ws, err := db.Setup(ctx, inbox.SetupInput{Workspace: "W", Name: "A", Email: "a@example.com", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	e.ws = ws.ID
	sealed, _ := json.Marshal(map[string]string{"hmac_secret": testSecret})
	e.ch, err = db.CreateChannel(ctx, ws.ID, inbox.Channel{Kind: "jsontest", Name: "J", SecretsEnc: sealed})
	if err != nil {
		t.Fatal(err)
	}
	e.workers = workers
	e.startWith(t, db, start)
	t.Cleanup(func() { e.stop(); e.db.Close() })
	return e
}

func (e *env) startWith(t testing.TB, db *store.DB, start bool) {
	e.db = db
	e.chans = &Channels{Store: db, Registry: channel.NewRegistry(append([]channel.Adapter{e.adapter}, e.extra...)...), OpenSecrets: openSecrets, PublicURL: "https://parley.example"}
	e.ing = New(Options{DB: db, Channels: e.chans, Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), Metrics: Metrics{
		Unverified: func(string) { e.unver.Add(1) },
		Committed: func(_ int, byWorker bool) {
			e.batches.Add(1)
			if byWorker {
				e.carried.Add(1)
			}
		},
	}, PollInterval: 50 * time.Millisecond, MaxBodyBytes: 64 << 10, Workers: e.workers})
	mux := http.NewServeMux()
	mux.HandleFunc("/webhooks/{id}", func(w http.ResponseWriter, r *http.Request) { e.ing.ServeWebhook(w, r, r.PathValue("id")) })
	e.srv = httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	if start {
		e.ing.Start(ctx)
	}
}

func (e *env) stop() {
	e.cancel()
	e.ing.Wait()
	e.srv.Close()
}

func (e *env) post(t testing.TB, body []byte, signed bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/webhooks/"+e.ch.ID, bytes.NewReader(body))
	if signed {
		req.Header.Set("X-Test-Signature", sign(testSecret, body))
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func payload(evs ...testEvent) []byte {
	b, _ := json.Marshal(map[string]any{"events": evs})
	return b
}

func (e *env) messages(t testing.TB) []inbox.Message {
	t.Helper()
	ctx := context.Background()
	convs, err := e.db.ListConversations(ctx, e.ws, inbox.ConversationFilter{View: inbox.ViewAll, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []inbox.Message
	for _, c := range convs.Items {
		p, err := e.db.ListMessages(ctx, e.ws, c.ID, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Items...)
	}
	return out
}

// eventually polls cond (the pipeline is asynchronous by design).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) allDone(t testing.TB, n int) func() bool {
	return func() bool {
		c, err := e.db.InboundCounts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return c[store.InboundDone] == n && c[store.InboundPending] == 0
	}
}

func TestWebhook(t *testing.T) {
	e := newEnv(t, true)
	body := payload(testEvent{ID: "m1", From: "100", Text: "hello"})

	st, b := e.post(t, body, false)
	if st != 401 || !strings.Contains(b, `"code":"unauthorized"`) {
		t.Fatalf("unsigned: %d %s", st, b)
	}
	if e.unver.Load() != 1 {
		t.Fatalf("unverified counter %d", e.unver.Load())
	}
	if c, _ := e.db.InboundCounts(context.Background()); len(c) != 0 {
		t.Fatalf("unverified webhook stored: %v", c)
	}
	st, b = e.post(t, body, true)
	if st != 200 || b != "ok" {
		t.Fatalf("signed: %d %s", st, b)
	}
	eventually(t, "processing", e.allDone(t, 1))
	ms := e.messages(t)
	if len(ms) != 1 || ms[0].Text != "hello" {
		t.Fatalf("%+v", ms)
	}
	// Handshake.
	resp, err := http.Get(e.srv.URL + "/webhooks/" + e.ch.ID + "?challenge=abc")
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(hb) != "abc" {
		t.Fatalf("handshake %d %s", resp.StatusCode, hb)
	}
	// Unknown channel, oversize body.
	req, _ := http.NewRequest("POST", e.srv.URL+"/webhooks/nope", bytes.NewReader(body))
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown channel: %d", resp.StatusCode)
	}
	if st, _ := e.post(t, bytes.Repeat([]byte("x"), 70<<10), true); st != 413 {
		t.Fatalf("oversize: %d", st)
	}
	// A replay is acknowledged and is a no-op.
	if st, _ := e.post(t, body, true); st != 200 {
		t.Fatal(st)
	}
	eventually(t, "replay processing", e.allDone(t, 2))
	if n := len(e.messages(t)); n != 1 {
		t.Fatalf("replay duplicated: %d messages", n)
	}
}

func TestGroupCommitConcurrent(t *testing.T) {
	e := newEnv(t, true)
	const n = 200
	var wg sync.WaitGroup
	var bad atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st, _ := e.post(t, payload(testEvent{ID: fmt.Sprint("c", i), From: fmt.Sprint(i % 7), Text: "x"}), true)
			if st != 200 {
				bad.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d webhooks not acknowledged", bad.Load())
	}
	if b := e.batches.Load(); b >= n {
		t.Fatalf("%d commits for %d concurrent webhooks: no grouping", b, n)
	}
	eventually(t, "processing", e.allDone(t, n))
	if got := len(e.messages(t)); got != n {
		t.Fatalf("%d messages, want %d", got, n)
	}
}

// While a worker applies a backlog on SQLite, webhooks are committed with
// its transactions instead of waiting for it to finish: each is committed
// once, acknowledged, and applied once.
func TestAcksCarriedByWorkers(t *testing.T) {
	e := newEnv(t, true) // (SQLite)
	var sent atomic.Int64
	var bad atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Until some worker transaction carried acknowledgements (a
			// backlog builds up quickly at this rate), at most 4000.
			for i := 0; e.carried.Load() == 0 && i < 250; i++ {
				sent.Add(1)
				if st, _ := e.post(t, payload(testEvent{ID: fmt.Sprint("w", g, "-", i), From: fmt.Sprint(i % 50), Text: "x"}), true); st != 200 {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d webhooks not acknowledged", bad.Load())
	}
	if e.carried.Load() == 0 {
		t.Fatalf("no worker transaction carried acknowledgements in %d webhooks", sent.Load())
	}
	n := int(sent.Load())
	eventually(t, "processing", e.allDone(t, n)) // (n entries done: none twice)
	if got := len(e.messages(t)); got != n {
		t.Fatalf("%d messages, want %d", got, n)
	}
}

func TestOrderWithinChannel(t *testing.T) {
	e := newEnv(t, true)
	e.post(t, payload(testEvent{ID: "m0", From: "5", Text: "v0"}), true)
	for i := 1; i <= 40; i++ {
		if st, _ := e.post(t, payload(testEvent{Type: "edit", Target: "m0", From: "5", Text: fmt.Sprint("v", i)}), true); st != 200 {
			t.Fatal(st)
		}
	}
	eventually(t, "processing", e.allDone(t, 41))
	ms := e.messages(t)
	if len(ms) != 1 || ms[0].Text != "v40" || ms[0].PreviousText != "v39" {
		t.Fatalf("%+v", ms)
	}
}

func TestCrashBeforeProcessing(t *testing.T) {
	e := newEnv(t, false) // webhooks acknowledged, no workers running
	const n = 25
	for i := 0; i < n; i++ {
		if st, _ := e.post(t, payload(testEvent{ID: fmt.Sprint("k", i), From: "9", Text: "t"}), true); st != 200 {
			t.Fatal(st)
		}
	}
	// A dead node held the channel's lease.
	if _, err := e.db.ClaimInboundChannels(context.Background(), "dead-node", time.Millisecond, 10); err != nil {
		t.Fatal(err)
	}
	// "Crash": close everything, reopen the database, start fresh workers.
	e.stop()
	e.db.Close()
	db, err := store.Open(context.Background(), e.dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // let the dead node's 1 ms lease expire
	e.startWith(t, db, true)
	eventually(t, "processing after restart", e.allDone(t, n))
	if got := len(e.messages(t)); got != n {
		t.Fatalf("%d messages, want exactly %d", got, n)
	}
}

func TestParseFailuresAndReprocess(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	e.adapter.legacy.Store(true)
	v2, _ := json.Marshal(map[string]any{"version": "v2", "events": []testEvent{{ID: "n1", From: "7", Text: "new format"}}})
	e.post(t, v2, true)
	e.post(t, []byte(`garbage{{{`), true)
	e.post(t, payload(testEvent{ID: "p1", From: "7", Panic: true}), true)
	eventually(t, "processing", e.allDone(t, 3))
	ms := e.messages(t)
	if len(ms) != 3 {
		t.Fatalf("%d messages, want 3 unsupported placeholders", len(ms))
	}
	for _, m := range ms {
		if m.Kind != inbox.KindUnsupported || len(m.Content) == 0 {
			t.Fatalf("%+v", m)
		}
	}
	// The parser is fixed: reprocess (dry run first).
	e.adapter.legacy.Store(false)
	rep, err := e.ing.Reprocess(ctx, e.ch.ID, time.Time{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 3 || rep.NewMessages != 1 || rep.Unparsed != 2 {
		t.Fatalf("dry run %+v", rep)
	}
	if got := e.messages(t); len(got) != 3 {
		t.Fatalf("dry run changed data")
	}
	rep, err = e.ing.Reprocess(ctx, e.ch.ID, time.Time{}, false)
	if err != nil || rep.NewMessages != 1 {
		t.Fatalf("%v %+v", err, rep)
	}
	live := 0
	for _, m := range e.messages(t) {
		if m.DeletedAt == nil {
			live++
			if m.Kind == inbox.KindText && m.Text != "new format" {
				t.Fatalf("%+v", m)
			}
		}
	}
	if live != 3 { // the real message + 2 still unreadable placeholders
		t.Fatalf("%d live messages", live)
	}
	rep, err = e.ing.Reprocess(ctx, e.ch.ID, time.Time{}, false)
	if err != nil || rep.NewMessages != 0 {
		t.Fatalf("second reprocess not idempotent: %v %+v", err, rep)
	}
}

// TestAnswersProviderQueries: an applied event that expects an answer (a
// pressed button) is answered through the adapter; others are not.
func TestAnswersProviderQueries(t *testing.T) {
	e := newEnv(t, true)
	e.post(t, payload(testEvent{ID: "q-msg", From: "7", Text: "opt_2", Query: "cbq-1"}, testEvent{ID: "plain", From: "7", Text: "hi"}), true)
	e.post(t, payload(testEvent{ID: "q-msg-2", From: "8", Text: "opt_1", Query: "cbq-2"}), true)
	eventually(t, "answers", func() bool { return len(e.adapter.answers()) == 2 })
	got := e.adapter.answers()
	sort.Strings(got)
	if got[0] != "cbq-1" || got[1] != "cbq-2" {
		t.Fatalf("answered %v", got)
	}
}

// TestGroupTitlesFromTheChatDirectory: group messages that carry no title
// (Wappi) get it from the provider's chat list, looked up once per group.
func TestGroupTitlesFromTheChatDirectory(t *testing.T) {
	e := newEnv(t, true)
	e.adapter.mu.Lock()
	e.adapter.titles = map[string]string{"g-ops": "Ops team"}
	e.adapter.mu.Unlock()
	for i := range 3 {
		e.post(t, payload(testEvent{ID: fmt.Sprint("gm", i), From: fmt.Sprint("member", i), Group: "g-ops", Text: "hi"}), true)
	}
	e.post(t, payload(testEvent{ID: "gx", From: "m9", Group: "g-unlisted", Text: "hi"}), true)
	eventually(t, "the group title", func() bool {
		cs, err := e.db.ListConversations(context.Background(), e.ws, inbox.ConversationFilter{View: inbox.ViewAll, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs.Items {
			if c.IsGroup && c.Title == "Ops team" {
				return true
			}
		}
		return false
	})
	eventually(t, "all done", e.allDone(t, 4))
	asked := func() map[string]int {
		e.adapter.mu.Lock()
		defer e.adapter.mu.Unlock()
		n := map[string]int{}
		for _, l := range e.adapter.lookups {
			for _, id := range l {
				n[id]++
			}
		}
		return n
	}
	eventually(t, "both groups looked up", func() bool { return len(asked()) == 2 })
	// More messages of the same groups within the hour: no new lookups.
	e.post(t, payload(testEvent{ID: "gm9", From: "member9", Group: "g-ops", Text: "again"}), true)
	eventually(t, "all done", e.allDone(t, 5))
	e.stop() // waits for background lookups
	if n := asked(); n["g-ops"] != 1 || n["g-unlisted"] != 1 || len(n) != 2 {
		t.Fatalf("lookups %v: want each group once", e.adapter.lookups)
	}
}
