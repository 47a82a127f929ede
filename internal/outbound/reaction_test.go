package outbound

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/instagram"
	"github.com/parleyhq/parley/internal/channel/messenger"
	"github.com/parleyhq/parley/internal/channel/telegram"
	"github.com/parleyhq/parley/internal/channel/wappi"
	"github.com/parleyhq/parley/internal/channel/whatsapp"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/store"
)

// rxRequest is one request the provider got.
type rxRequest struct {
	Method, Path, Auth string
	Body               []byte
}

// rxProvider records requests and answers them with answer, after the
// scripted failure statuses.
type rxProvider struct {
	mu     sync.Mutex
	reqs   []rxRequest
	script []int
	answer string
	srv    *httptest.Server
}

func newRxProvider(t *testing.T, answer string, script ...int) *rxProvider {
	p := &rxProvider{answer: answer, script: script}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.reqs = append(p.reqs, rxRequest{Method: r.Method, Path: r.URL.RequestURI(), Auth: r.Header.Get("Authorization"), Body: body})
		w.Header().Set("Content-Type", "application/json")
		if len(p.script) > 0 {
			status := p.script[0]
			p.script = p.script[1:]
			w.WriteHeader(status)
			io.WriteString(w, `{"error":{"message":"temporarily unavailable","code":2}}`)
			return
		}
		io.WriteString(w, p.answer)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *rxProvider) requests() []rxRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]rxRequest(nil), p.reqs...)
}

// rxEnv is a running worker over a store holding one inbound message of a
// real adapter's channel.
type rxEnv struct {
	db   *store.DB
	ws   string
	ch   inbox.Channel
	msg  inbox.Message
	w    *Worker
	logs *rxLog
}

func newRxEnv(t *testing.T, ad channel.Adapter, config map[string]any, secrets map[string]string, in channel.Event, logs *rxLog) *rxEnv {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "rx.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, ws, err := db.Setup(ctx, inbox.SetupInput{Workspace: "W", Name: "A", Email: "a@example.com", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := db.CreateChannel(ctx, ws.ID, inbox.Channel{Kind: ad.Kind(), Name: ad.Kind(), Config: config})
	if err != nil {
		t.Fatal(err)
	}
	in.Type, in.Direction, in.Kind, in.Text = channel.EventMessage, "inbound", inbox.KindText, "hi"
	if _, err := db.ApplyInbound(ctx, store.InboundEntry{ID: "e1", ReceivedAt: time.Now()}, ch, []channel.Event{in}); err != nil {
		t.Fatal(err)
	}
	convs, err := db.ListConversations(ctx, ws.ID, inbox.ConversationFilter{View: inbox.ViewAll})
	if err != nil || len(convs.Items) != 1 {
		t.Fatalf("%v %d", err, len(convs.Items))
	}
	ms, err := db.ListMessages(ctx, ws.ID, convs.Items[0].ID, "", 10)
	if err != nil || len(ms.Items) != 1 {
		t.Fatalf("%v %d", err, len(ms.Items))
	}
	if logs == nil {
		logs = &rxLog{}
	}
	e := &rxEnv{db: db, ws: ws.ID, ch: ch, msg: ms.Items[0], logs: logs}
	e.w = New(Options{DB: db, Poll: 5 * time.Millisecond, Backoff: Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Adapter: func(ctx context.Context, id string) (channel.Adapter, channel.Config, error) {
			c, err := db.ChannelByID(ctx, id)
			return ad, channel.Config{ChannelID: id, WorkspaceID: c.WorkspaceID, Kind: c.Kind, Config: c.Config, Secrets: secrets}, err
		}})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.w.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

var rxAnn = inbox.Actor{Type: "agent", ID: "u-ann", Name: "Ann"}

func (e *rxEnv) react(t *testing.T, emoji string) {
	t.Helper()
	var err error
	if emoji == "" {
		_, err = e.db.RemoveReaction(context.Background(), e.ws, e.msg.ID, rxAnn)
	} else {
		_, err = e.db.AddReaction(context.Background(), e.ws, e.msg.ID, inbox.Reaction{Emoji: emoji, By: rxAnn})
	}
	if err != nil {
		t.Fatal(err)
	}
	e.w.Notify()
}

// settled waits until the message's newest reaction job is sent or failed and returns it.
func (e *rxEnv) settled(t *testing.T) store.OutboxJob {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		js, err := e.db.OutboxJobs(context.Background(), e.msg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(js); n > 0 && js[n-1].Kind == store.OutboxReaction && (js[n-1].State == store.OutboxSent || js[n-1].State == store.OutboxFailed) {
			return js[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("reaction jobs %+v never settled", js)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// unchanged checks that the reacted-to message is as it was and that no
// message was created.
func (e *rxEnv) unchanged(t *testing.T) {
	t.Helper()
	m, err := e.db.GetMessage(context.Background(), e.ws, e.msg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != e.msg.Status || m.ExternalID != e.msg.ExternalID || m.Error != "" {
		t.Fatalf("reacted-to message changed: %+v", m)
	}
	page, err := e.db.ListMessages(context.Background(), e.ws, e.msg.ConversationID, "", 10)
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("%v: %d messages, a reaction creates none", err, len(page.Items))
	}
}

func sameJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("body\n got %s\nwant %s", got, want)
	}
}

// TestReactionJobsReachTheProvider: an operator's reaction and its removal
// go out through the adapter as the provider documents them, and nothing
// else happens to the conversation.
func TestReactionJobsReachTheProvider(t *testing.T) {
	type call struct{ path, body string }
	tests := []struct {
		name    string
		ad      channel.Adapter
		config  map[string]any
		secrets map[string]string
		in      channel.Event
		answer  string
		auth    string
		react   call // 👍
		unreact call
	}{
		{
			name: "whatsapp type reaction (providers.md §1)", ad: whatsapp.New(),
			config:  map[string]any{"phone_number_id": "PNID"},
			secrets: map[string]string{"access_token": "wa-token", "app_secret": "s", "verify_token": "v"},
			in:      channel.Event{ExternalID: "wamid.XYZ", ChatID: "15552223333", Sender: channel.Party{Identifier: "15552223333", Name: "Ana"}},
			answer:  `{"messaging_product":"whatsapp","contacts":[{"input":"15552223333","wa_id":"15552223333"}],"messages":[{"id":"wamid.REACTION"}]}`,
			auth:    "Bearer wa-token",
			react: call{"/PNID/messages", `{"messaging_product":"whatsapp","recipient_type":"individual","to":"15552223333",
				"type":"reaction","reaction":{"message_id":"wamid.XYZ","emoji":"👍"}}`},
			unreact: call{"/PNID/messages", `{"messaging_product":"whatsapp","recipient_type":"individual","to":"15552223333",
				"type":"reaction","reaction":{"message_id":"wamid.XYZ","emoji":""}}`},
		},
		{
			name: "telegram setMessageReaction", ad: telegram.New(),
			secrets: map[string]string{"bot_token": "123:tg-token"},
			in: channel.Event{ExternalID: "-1001234567890:77", ChatID: "-1001234567890", IsGroup: true, GroupTitle: "Ops",
				Sender: channel.Party{Identifier: "4242", Name: "Li"}},
			answer:  `{"ok":true,"result":true}`,
			react:   call{"/bot123:tg-token/setMessageReaction", `{"chat_id":-1001234567890,"message_id":77,"reaction":[{"type":"emoji","emoji":"👍"}]}`},
			unreact: call{"/bot123:tg-token/setMessageReaction", `{"chat_id":-1001234567890,"message_id":77,"reaction":[]}`},
		},
		{
			name: "wappi whatsapp react (providers.md §7)", ad: wappi.New(),
			config:  map[string]any{"profile_id": "0a1b2c3d-4e5f"},
			secrets: map[string]string{"api_token": "wp-token"},
			in:      channel.Event{ExternalID: "0a1b2c3d-4e5f:3EB0FFEE", ChatID: "15550009999@c.us", Sender: channel.Party{Identifier: "15550009999@c.us", Name: "Tom"}},
			answer:  `{"status":"done","message_id":"3EB0REACT"}`,
			auth:    "wp-token",
			react:   call{"/api/sync/message/reaction?profile_id=0a1b2c3d-4e5f", `{"body":"👍","message_id":"3EB0FFEE"}`},
			unreact: call{"/api/sync/message/reaction?profile_id=0a1b2c3d-4e5f", `{"body":"","message_id":"3EB0FFEE"}`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newRxProvider(t, tc.answer)
			config := map[string]any{"api_base_url": p.srv.URL}
			for k, v := range tc.config {
				config[k] = v
			}
			e := newRxEnv(t, tc.ad, config, tc.secrets, tc.in, nil)
			e.react(t, "👍")
			if j := e.settled(t); j.State != store.OutboxSent || j.Attempts != 1 {
				t.Fatalf("react job %+v", j)
			}
			e.react(t, "") // Ann removes it
			if j := e.settled(t); j.State != store.OutboxSent {
				t.Fatalf("unreact job %+v", j)
			}
			reqs := p.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests %+v, want react then unreact", len(reqs), reqs)
			}
			for i, want := range []call{tc.react, tc.unreact} {
				if reqs[i].Method != http.MethodPost || reqs[i].Path != want.path || (tc.auth != "" && reqs[i].Auth != tc.auth) {
					t.Fatalf("request %d: %s %s auth %q, want POST %s auth %q", i, reqs[i].Method, reqs[i].Path, reqs[i].Auth, want.path, tc.auth)
				}
				sameJSON(t, reqs[i].Body, want.body)
			}
			e.unchanged(t)
			if h, _ := e.db.ChannelHealth(context.Background(), e.ws, e.ch.ID); h.LastOutboundAt == nil || h.LastError != "" {
				t.Fatalf("health %+v", h)
			}
		})
	}
}

// TestReactionJobRetried: a reaction gets the sends' retries and backoff.
func TestReactionJobRetried(t *testing.T) {
	p := newRxProvider(t, `{"messaging_product":"whatsapp","messages":[{"id":"wamid.R"}]}`, 503, 500)
	e := newRxEnv(t, whatsapp.New(), map[string]any{"api_base_url": p.srv.URL, "phone_number_id": "PNID"},
		map[string]string{"access_token": "wa-token"}, channel.Event{ExternalID: "wamid.XYZ", ChatID: "15552223333", Sender: channel.Party{Identifier: "15552223333"}}, nil)
	e.react(t, "🙏")
	if j := e.settled(t); j.State != store.OutboxSent || j.Attempts != 3 {
		t.Fatalf("job %+v, want sent on the third attempt", j)
	}
	if n := len(p.requests()); n != 3 {
		t.Fatalf("%d requests", n)
	}
	e.unchanged(t)
}

// TestReactionJobRefusedByMessagingAPI: Messenger and Instagram document no
// reaction send (providers.md §2, §3): a reaction job fails for good without
// a request, surfaced on the job, the channel's health and a warning.
func TestReactionJobRefusedByMessagingAPI(t *testing.T) {
	for _, ad := range []channel.Adapter{instagram.New(), messenger.New()} {
		t.Run(ad.Kind(), func(t *testing.T) {
			p := newRxProvider(t, `{"recipient_id":"IGSID","message_id":"m_1"}`)
			logs := &rxLog{}
			e := newRxEnv(t, ad, map[string]any{"api_base_url": p.srv.URL, "account_id": "IGACCT", "page_id": "PAGE"},
				map[string]string{"access_token": "secret-token", "page_access_token": "secret-token"},
				channel.Event{ExternalID: "aWdf_target", ChatID: "IGSID", Sender: channel.Party{Identifier: "IGSID"}}, logs)
			e.react(t, "❤️")
			j := e.settled(t)
			if j.State != store.OutboxFailed || j.Attempts != 1 || !strings.Contains(j.LastError, "cannot send reactions") {
				t.Fatalf("job %+v", j)
			}
			if n := len(p.requests()); n != 0 {
				t.Fatalf("%d requests to the provider", n)
			}
			e.unchanged(t)
			if h, _ := e.db.ChannelHealth(context.Background(), e.ws, e.ch.ID); !strings.Contains(h.LastError, "reaction not delivered") {
				t.Fatalf("health %+v", h)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(e.logSnapshot(), "reaction not delivered") && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			out := e.logSnapshot()
			if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "reaction not delivered") || strings.Contains(out, "secret-token") {
				t.Fatalf("log %q: want a warning without secrets", out)
			}
		})
	}
}

// rxLog is a log written by the worker's goroutines while a test reads it.
type rxLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *rxLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *rxLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (e *rxEnv) logSnapshot() string { return e.logs.String() }
