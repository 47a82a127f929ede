package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/twilio"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/store"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Minute, Jitter: 0.5, MaxRetryAfter: 10 * time.Minute}
	tests := []struct {
		attempt    int
		retryAfter time.Duration
		r          float64
		want       time.Duration
	}{
		{1, 0, 0, time.Second},
		{2, 0, 0, 2 * time.Second},
		{3, 0, 0, 4 * time.Second},
		{3, 0, 0.5, 3 * time.Second}, // a quarter off
		{3, 0, 0.999999, 2*time.Second + 2*time.Microsecond},
		{7, 0, 0, time.Minute}, // 64s capped
		{60, 0, 0, time.Minute},
		{0, 0, 0, time.Second},
		{1, 30 * time.Second, 0, 30 * time.Second}, // Retry-After wins when longer
		{7, 10 * time.Second, 0, time.Minute},      // ... not when shorter
		{1, 5 * time.Hour, 0, 10 * time.Minute},    // capped
	}
	for _, tc := range tests {
		got := b.Delay(tc.attempt, tc.retryAfter, tc.r)
		if d := got - tc.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("Delay(%d, %v, %v) = %v, want %v", tc.attempt, tc.retryAfter, tc.r, got, tc.want)
		}
	}
}

func TestCheckRules(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	wa := channel.Rules{MaxTextLen: 4096, ReplyWindow: 24 * time.Hour, Media: true, Templates: true, MaxMediaSize: 16 << 20}
	meta := channel.Rules{MaxTextLen: 2000, TextLenUnit: "utf16", ReplyWindow: 24 * time.Hour, TagWindow: 7 * 24 * time.Hour, Media: true}
	sms := channel.Rules{MaxTextLen: 10, TextLenUnit: "chars"}
	tg := channel.Rules{MaxTextLen: 4096, SplitLongText: true, Media: true}
	bytesRule := channel.Rules{MaxTextLen: 4, TextLenUnit: "bytes"}
	smsParts := twilio.New().Rules(channel.Config{})
	smsParts.MaxSegments = 2
	tests := []struct {
		name    string
		rules   channel.Rules
		last    *time.Time
		group   bool
		draft   Draft
		wantErr string // substring of the message; "" = allowed
	}{
		{"sms two GSM-7 parts", smsParts, nil, false, Draft{Text: strings.Repeat("a", 306)}, ""},
		{"sms three GSM-7 parts", smsParts, nil, false, Draft{Text: strings.Repeat("a", 307)}, "needs 3 SMS parts (GSM-7)"},
		{"sms one emoji makes it UCS-2", smsParts, nil, false, Draft{Text: strings.Repeat("a", 140) + "🙂"}, "needs 3 SMS parts (UCS-2)"},
		{"whatsapp inside window", wa, ago(time.Hour), false, Draft{Text: "hi"}, ""},
		{"whatsapp outside window", wa, ago(25 * time.Hour), false, Draft{Text: "hi"}, "send a template instead"},
		{"whatsapp never wrote", wa, nil, false, Draft{Text: "hi"}, "send a template instead"},
		{"whatsapp template outside window", wa, ago(30 * 24 * time.Hour), false, Draft{Template: true}, ""},
		{"whatsapp group has no window", wa, nil, true, Draft{Text: "hi"}, ""},
		{"messenger tag window", meta, ago(3 * 24 * time.Hour), false, Draft{Text: "hi"}, ""},
		{"messenger past tag window", meta, ago(8 * 24 * time.Hour), false, Draft{Text: "hi"}, "7-day human-agent window"},
		{"messenger no templates", meta, ago(time.Hour), false, Draft{Template: true}, "does not support templates"},
		{"sms without media", sms, nil, false, Draft{Text: "x", Attachments: []DraftMedia{{Filename: "a.png", Size: 10}}}, "cannot carry attachments"},
		{"sms too long", sms, nil, false, Draft{Text: "ünïcödé 1234"}, "at most 10"},
		{"sms fits in chars", sms, nil, false, Draft{Text: "ünïcödé"}, ""},
		{"bytes unit", bytesRule, nil, false, Draft{Text: "üü!"}, "5 bytes"},
		{"utf16 unit counts surrogates", channel.Rules{MaxTextLen: 3, TextLenUnit: "utf16"}, nil, false, Draft{Text: "a😀b"}, "4 characters"},
		{"telegram long text is split", tg, nil, false, Draft{Text: strings.Repeat("x", 10000)}, ""},
		{"file too large", wa, ago(time.Hour), false, Draft{Attachments: []DraftMedia{{Filename: "v.mp4", Size: 20 << 20}}}, "up to 16.0 MB"},
		{"empty", wa, ago(time.Hour), false, Draft{Text: "  "}, "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRules(tc.rules, channel.ConversationState{LastInboundAt: tc.last, IsGroup: tc.group, Now: now}, tc.draft)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected refusal: %v", err)
				}
				return
			}
			if err == nil || !inbox.IsCode(err, inbox.Invalid) || !strings.Contains(inbox.ErrorMessage(err), tc.wantErr) {
				t.Fatalf("got %v, want Invalid containing %q", err, tc.wantErr)
			}
		})
	}
	if !NeedsHumanAgent(meta, channel.ConversationState{LastInboundAt: ago(48 * time.Hour), Now: now}) || NeedsHumanAgent(meta, channel.ConversationState{LastInboundAt: ago(time.Hour), Now: now}) {
		t.Fatal("NeedsHumanAgent")
	}
}

// provider is a fake provider API on a real HTTP server: it answers the
// scripted statuses in turn, then 200, and records accepted sends per
// idempotency key.
type provider struct {
	mu       sync.Mutex
	script   []int
	requests int
	accepted map[string]int
	texts    []string // accepted texts in order
	srv      *httptest.Server
}

func newProvider(t *testing.T, script ...int) *provider {
	p := &provider{script: script, accepted: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.requests++
		status := 200
		if len(p.script) > 0 {
			status, p.script = p.script[0], p.script[1:]
		}
		if status != 200 {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":"recipient is not a valid number"}`)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		p.accepted[key]++
		var body struct{ Text string }
		json.NewDecoder(r.Body).Decode(&body)
		p.texts = append(p.texts, body.Text)
		fmt.Fprintf(w, `{"id":"ext-%s-%d"}`, key[len(key)-4:], p.accepted[key])
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// httpAdapter sends through the provider's HTTP API (a test fixture).
type httpAdapter struct{}

func (httpAdapter) Kind() string                                 { return "outtest" }
func (httpAdapter) Verify(channel.Config, channel.Request) error { return nil }
func (httpAdapter) Handshake(channel.Config, channel.Request) (int, string, bool) {
	return 0, "", false
}
func (httpAdapter) Parse(channel.Config, channel.Request) ([]channel.Event, error) { return nil, nil }
func (httpAdapter) Ack() (string, []byte)                                          { return "", nil }
func (httpAdapter) FetchMedia(context.Context, channel.Config, string) (io.ReadCloser, string, error) {
	return nil, "", errors.New("no media")
}
func (httpAdapter) Rules(channel.Config) channel.Rules                     { return channel.Rules{} }
func (httpAdapter) ValidateConfig(map[string]any, map[string]string) error { return nil }
func (httpAdapter) Send(ctx context.Context, cfg channel.Config, out channel.Outgoing) (channel.SendResult, error) {
	body, _ := json.Marshal(map[string]string{"to": out.To, "text": out.Text})
	req, _ := http.NewRequestWithContext(ctx, "POST", cfg.BaseURL("")+"/send", strings.NewReader(string(body)))
	req.Header.Set("Idempotency-Key", out.MessageID)
	resp, err := cfg.Client().Do(req)
	if err != nil {
		return channel.SendResult{}, err
	}
	defer resp.Body.Close()
	var r struct{ ID, Error string }
	_ = json.NewDecoder(resp.Body).Decode(&r)
	if resp.StatusCode >= 500 {
		return channel.SendResult{}, &channel.SendError{Retryable: true, HTTPStatus: resp.StatusCode, Reason: r.Error}
	}
	if resp.StatusCode >= 400 {
		return channel.SendResult{}, &channel.SendError{HTTPStatus: resp.StatusCode, Reason: r.Error}
	}
	return channel.SendResult{ExternalID: r.ID, Status: inbox.MsgSent}, nil
}

type outEnv struct {
	db   *store.DB
	ws   string
	conv string
	w    *Worker
}

func newOutEnv(t *testing.T, p *provider, run bool) *outEnv {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "o.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, ws, err := db.Setup(ctx, inbox.SetupInput{Workspace: "W", Name: "A", Email: "a@example.com", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := db.CreateChannel(ctx, ws.ID, inbox.Channel{Kind: "outtest", Name: "O", Config: map[string]any{"api_base_url": p.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplyInbound(ctx, store.InboundEntry{ID: "e1", ReceivedAt: time.Now()}, ch, []channel.Event{{Type: channel.EventMessage, ExternalID: "in1",
		ChatID: "+15550001", Direction: "inbound", Kind: inbox.KindText, Text: "hi", Sender: channel.Party{Identifier: "+15550001"}}}); err != nil {
		t.Fatal(err)
	}
	convs, err := db.ListConversations(ctx, ws.ID, inbox.ConversationFilter{View: inbox.ViewAll})
	if err != nil || len(convs.Items) != 1 {
		t.Fatalf("%v %d", err, len(convs.Items))
	}
	e := &outEnv{db: db, ws: ws.ID, conv: convs.Items[0].ID}
	e.w = New(Options{DB: db, Poll: 5 * time.Millisecond, Backoff: Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond},
		Adapter: func(ctx context.Context, id string) (channel.Adapter, channel.Config, error) {
			c, err := db.ChannelByID(ctx, id)
			return httpAdapter{}, channel.Config{ChannelID: id, Config: c.Config}, err
		}})
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.w.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return e
}

func (e *outEnv) send(t *testing.T, text string) inbox.Message {
	t.Helper()
	m, err := e.db.CreateMessage(context.Background(), e.ws, inbox.NewMessage{ConversationID: e.conv, Sender: inbox.Actor{Type: "agent"}, Text: text, Outbox: true})
	if err != nil {
		t.Fatal(err)
	}
	e.w.Notify()
	return m
}

func (e *outEnv) waitStatus(t *testing.T, id string, want ...string) inbox.Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := e.db.GetMessage(context.Background(), e.ws, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if m.Status == w {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("message status %s, want %v", m.Status, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRetryThenSent(t *testing.T) {
	p := newProvider(t, 500, 503)
	e := newOutEnv(t, p, true)
	m := e.send(t, "hello")
	got := e.waitStatus(t, m.ID, inbox.MsgSent, inbox.MsgFailed)
	if got.Status != inbox.MsgSent || got.ExternalID == "" {
		t.Fatalf("%+v", got)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.requests != 3 || len(p.accepted) != 1 || p.accepted[m.ID] != 1 {
		t.Fatalf("requests %d accepted %v: want 3 tries and exactly one send", p.requests, p.accepted)
	}
	st, attempts, _, err := e.db.OutboxState(context.Background(), m.ID)
	if err != nil || st != store.OutboxSent || attempts != 3 {
		t.Fatalf("%v %s %d", err, st, attempts)
	}
}

func TestPermanentFailureAndRetry(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t, 400)
	e := newOutEnv(t, p, true)
	m := e.send(t, "hello")
	got := e.waitStatus(t, m.ID, inbox.MsgFailed, inbox.MsgSent)
	if got.Status != inbox.MsgFailed || got.Error != "recipient is not a valid number" {
		t.Fatalf("%+v", got)
	}
	if _, err := e.db.RetryMessage(ctx, e.ws, m.ID); err != nil {
		t.Fatal(err)
	}
	e.w.Notify()
	if got = e.waitStatus(t, m.ID, inbox.MsgSent); got.Error != "" {
		t.Fatalf("%+v", got)
	}
	if _, err := e.db.RetryMessage(ctx, e.ws, m.ID); !inbox.IsCode(err, inbox.Conflict) {
		t.Fatalf("retry of a sent message: %v", err)
	}
	if _, err := e.db.RetryMessage(ctx, "other-ws", m.ID); !inbox.IsCode(err, inbox.NotFound) {
		t.Fatalf("retry from another workspace: %v", err)
	}
}

func TestRetriesExhausted(t *testing.T) {
	p := newProvider(t, 500, 500, 500, 500)
	e := newOutEnv(t, p, false)
	e.w.o.MaxAttempts = 3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.w.Run(ctx)
	m := e.send(t, "x")
	got := e.waitStatus(t, m.ID, inbox.MsgFailed)
	if got.Error == "" {
		t.Fatalf("%+v", got)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.requests != 3 {
		t.Fatalf("%d requests, want 3", p.requests)
	}
}

func TestCrashMidSendIsUncertain(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t)
	e := newOutEnv(t, p, false)
	m := e.send(t, "x")
	// A node claims the send (attempt recorded in flight) and dies.
	items, _, err := e.db.ClaimOutbox(ctx, time.Millisecond, 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("%v %d", err, len(items))
	}
	time.Sleep(5 * time.Millisecond) // its lease expires
	items, uncertain, err := e.db.ClaimOutbox(ctx, time.Minute, 10)
	if err != nil || len(items) != 0 || len(uncertain) != 1 || uncertain[0] != m.ID {
		t.Fatalf("%v items %d uncertain %v", err, len(items), uncertain)
	}
	got, _ := e.db.GetMessage(ctx, e.ws, m.ID)
	if got.Status != inbox.MsgFailed || got.Error != store.UncertainReason {
		t.Fatalf("%+v", got)
	}

	// A worker now runs over the uncertain row for several poll intervals: it
	// must not re-send it.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.w.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	uncertainUntouched := func() {
		t.Helper()
		got, err := e.db.GetMessage(ctx, e.ws, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != inbox.MsgFailed || got.Error != store.UncertainReason {
			t.Fatalf("uncertain message changed: %+v", got)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.accepted[m.ID] != 0 {
			t.Fatal("an uncertain send was re-sent")
		}
	}
	for range 10 { // ten poll intervals
		time.Sleep(e.w.o.Poll)
		uncertainUntouched()
	}
	// A later message goes out, so the worker was alive and claiming all along.
	later := e.send(t, "later")
	e.waitStatus(t, later.ID, inbox.MsgSent)
	uncertainUntouched()
	p.mu.Lock()
	requests := p.requests
	p.mu.Unlock()
	if requests != 1 {
		t.Fatalf("provider got %d requests, want 1 (the later message only)", requests)
	}
	if st, attempts, _, err := e.db.OutboxState(ctx, m.ID); err != nil || st != store.OutboxFailed || attempts != 1 {
		t.Fatalf("uncertain outbox row: %v %s %d", err, st, attempts)
	}
}

func TestSendsOfAConversationKeepTheirOrder(t *testing.T) {
	p := newProvider(t, 500, 500) // the first message needs two retries
	e := newOutEnv(t, p, true)
	var ids []string
	for _, txt := range []string{"one", "two", "three"} {
		ids = append(ids, e.send(t, txt).ID)
	}
	for _, id := range ids {
		e.waitStatus(t, id, inbox.MsgSent)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if strings.Join(p.texts, ",") != "one,two,three" {
		t.Fatalf("provider got %v", p.texts)
	}
}
