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
	"github.com/parleyhq/parley/internal/channel/instagram"
	"github.com/parleyhq/parley/internal/channel/messenger"
	"github.com/parleyhq/parley/internal/channel/telegram"
	"github.com/parleyhq/parley/internal/channel/twilio"
	"github.com/parleyhq/parley/internal/channel/whatsapp"
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

// TestCheckRules runs the pre-queue check with the Rules the real adapters
// declare, so it tests what ships.
func TestCheckRules(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	const mb = 1 << 20
	file := func(kind, name string, size int64) Draft {
		return Draft{Attachments: []DraftMedia{{Kind: kind, Filename: name, Size: size}}}
	}
	files := func(n int, size int64) Draft {
		d := Draft{}
		for i := range n {
			d.Attachments = append(d.Attachments, DraftMedia{Kind: inbox.KindImage, Filename: fmt.Sprintf("p%d.jpg", i), Size: size})
		}
		return d
	}
	wa := whatsapp.New().Rules(channel.Config{})
	ms := messenger.New().Rules(channel.Config{})
	ig := instagram.New().Rules(channel.Config{})
	tg := telegram.New().Rules(channel.Config{})
	sms := twilio.New().Rules(channel.Config{})
	mms := twilio.New().Rules(channel.Config{Config: map[string]any{"mms": true}})
	smsParts := twilio.New().Rules(channel.Config{})
	smsParts.MaxSegments = 2 // no channel sets a cap yet: the count is the adapter's
	tests := []struct {
		name    string
		rules   channel.Rules
		last    *time.Time
		group   bool
		draft   Draft
		wantErr []string // substrings of the message; none = allowed
	}{
		{"whatsapp inside window", wa, ago(time.Hour), false, Draft{Text: "hi"}, nil},
		{"whatsapp outside window", wa, ago(25 * time.Hour), false, Draft{Text: "hi"}, []string{"send a template instead"}},
		{"whatsapp never wrote", wa, nil, false, Draft{Text: "hi"}, []string{"send a template instead"}},
		{"whatsapp template outside window", wa, ago(30 * 24 * time.Hour), false, Draft{Template: true}, nil},
		{"whatsapp group has no window", wa, nil, true, Draft{Text: "hi"}, nil},
		{"whatsapp 4096 characters", wa, ago(time.Hour), false, Draft{Text: strings.Repeat("é", 4096)}, nil},
		{"whatsapp 4097 characters", wa, ago(time.Hour), false, Draft{Text: strings.Repeat("é", 4097)}, []string{"4097 characters", "at most 4096"}},
		{"whatsapp 6 MB image", wa, ago(time.Hour), false, file(inbox.KindImage, "photo.jpg", 6*mb),
			[]string{`"photo.jpg" is 6.0 MB`, "images up to 5.0 MB", "as a document"}},
		{"whatsapp 5 MB image", wa, ago(time.Hour), false, file(inbox.KindImage, "photo.jpg", 5*mb), nil},
		{"whatsapp 6 MB document", wa, ago(time.Hour), false, file(inbox.KindDocument, "report.pdf", 6*mb), nil},
		{"whatsapp 101 MB document", wa, ago(time.Hour), false, file(inbox.KindDocument, "dump.zip", 101*mb), []string{"documents up to 100.0 MB", "a smaller file or a link"}},
		{"whatsapp 20 MB video", wa, ago(time.Hour), false, file(inbox.KindVideo, "v.mp4", 20*mb), []string{"20.0 MB", "videos up to 16.0 MB"}},
		{"whatsapp 15 MB voice note", wa, ago(time.Hour), false, file(inbox.KindVoice, "v.ogg", 15*mb), nil},
		{"whatsapp 17 MB audio", wa, ago(time.Hour), false, file(inbox.KindAudio, "a.mp3", 17*mb), []string{"audio files up to 16.0 MB"}},
		{"whatsapp 600 KB sticker", wa, ago(time.Hour), false, file(inbox.KindSticker, "s.webp", 600<<10), []string{"600.0 KB", "stickers up to 500.0 KB"}},
		{"messenger tag window", ms, ago(3 * 24 * time.Hour), false, Draft{Text: "hi"}, nil},
		{"messenger past tag window", ms, ago(8 * 24 * time.Hour), false, Draft{Text: "hi"}, []string{"7-day human-agent window"}},
		{"messenger no templates", ms, ago(time.Hour), false, Draft{Template: true}, []string{"does not support templates"}},
		// Messenger declares characters (runes): 2000 emoji fit although
		// they are 4000 UTF-16 units and 8000 bytes.
		{"messenger 2000 emoji", ms, ago(time.Hour), false, Draft{Text: strings.Repeat("😀", 2000)}, nil},
		{"messenger 2001 characters", ms, ago(time.Hour), false, Draft{Text: strings.Repeat("😀", 2001)}, []string{"2001 characters", "at most 2000"}},
		{"messenger 24 MB document", ms, ago(time.Hour), false, file(inbox.KindDocument, "d.pdf", 24*mb), nil},
		{"messenger 26 MB video", ms, ago(time.Hour), false, file(inbox.KindVideo, "v.mp4", 26*mb), []string{"videos up to 25.0 MB"}},
		{"instagram 1000 bytes", ig, ago(time.Hour), false, Draft{Text: strings.Repeat("é", 500)}, nil},
		{"instagram counts bytes", ig, ago(time.Hour), false, Draft{Text: strings.Repeat("é", 501)}, []string{"1002 bytes", "at most 1000"}},
		{"instagram 9 MB image", ig, ago(time.Hour), false, file(inbox.KindImage, "p.png", 9*mb), []string{"images up to 8.0 MB"}},
		{"instagram 9 MB video", ig, ago(time.Hour), false, file(inbox.KindVideo, "v.mp4", 9*mb), nil},
		{"instagram 26 MB audio", ig, ago(time.Hour), false, file(inbox.KindAudio, "a.m4a", 26*mb), []string{"audio files up to 25.0 MB"}},
		{"telegram long text is split", tg, nil, false, Draft{Text: strings.Repeat("x", 10000)}, nil},
		{"telegram 6 MB photo", tg, nil, false, file(inbox.KindImage, "p.jpg", 6*mb), []string{"images up to 5.0 MB", "as a document"}},
		{"telegram 19 MB video", tg, nil, false, file(inbox.KindVideo, "v.mp4", 19*mb), nil},
		{"telegram 21 MB document", tg, nil, false, file(inbox.KindDocument, "d.zip", 21*mb), []string{"documents up to 20.0 MB"}},
		{"sms without media", sms, nil, false, Draft{Text: "x", Attachments: []DraftMedia{{Filename: "a.png", Size: 10}}}, []string{"cannot carry attachments"}},
		{"sms 1600 characters", sms, nil, false, Draft{Text: strings.Repeat("ü", 1600)}, nil},
		{"sms 1601 characters", sms, nil, false, Draft{Text: strings.Repeat("ü", 1601)}, []string{"1601 characters", "at most 1600"}},
		{"sms two GSM-7 parts", smsParts, nil, false, Draft{Text: strings.Repeat("a", 306)}, nil},
		{"sms three GSM-7 parts", smsParts, nil, false, Draft{Text: strings.Repeat("a", 307)}, []string{"needs 3 SMS parts (GSM-7)"}},
		{"sms one emoji makes it UCS-2", smsParts, nil, false, Draft{Text: strings.Repeat("a", 140) + "🙂"}, []string{"needs 3 SMS parts (UCS-2)"}},
		{"mms 4 MB image", mms, nil, false, file(inbox.KindImage, "p.jpg", 4*mb), nil},
		{"mms files over 5 MB together", mms, nil, false, files(3, 2*mb), []string{"add up to 6.0 MB", "at most 5.0 MB per message"}},
		{"mms ten files", mms, nil, false, files(10, 100<<10), nil},
		{"mms eleven files", mms, nil, false, files(11, 100<<10), []string{"at most 10 files"}},
		// TextLen's UTF-16 unit, which no shipped adapter refuses with (Telegram splits).
		{"utf16 unit counts surrogates", channel.Rules{MaxTextLen: 3, TextLenUnit: "utf16"}, nil, false, Draft{Text: "a😀b"}, []string{"4 characters"}},
		{"empty", wa, ago(time.Hour), false, Draft{Text: "  "}, []string{"empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRules(tc.rules, channel.ConversationState{LastInboundAt: tc.last, IsGroup: tc.group, Now: now}, tc.draft)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected refusal: %v", err)
				}
				return
			}
			if err == nil || !inbox.IsCode(err, inbox.Invalid) {
				t.Fatalf("got %v, want Invalid", err)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(inbox.ErrorMessage(err), want) {
					t.Errorf("message %q lacks %q", inbox.ErrorMessage(err), want)
				}
			}
		})
	}
	if !NeedsHumanAgent(ms, channel.ConversationState{LastInboundAt: ago(48 * time.Hour), Now: now}) || NeedsHumanAgent(ms, channel.ConversationState{LastInboundAt: ago(time.Hour), Now: now}) {
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
