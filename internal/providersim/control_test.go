package providersim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// newControl starts the simulator behind its control API and a fake Parley
// (the real adapters' Verify and Parse), with no channel registered yet.
func newControl(t *testing.T) (*Server, *fakeParley, *httptest.Server) {
	t.Helper()
	fp := newFakeParley(t)
	srv := New(ServerOptions{StatusDelay: time.Millisecond, Backoff: time.Millisecond, MaxAttempts: 3})
	ts := httptest.NewServer(NewControl(srv))
	t.Cleanup(func() { srv.Close(); ts.Close() })
	srv.SetURL(ts.URL)
	fp.srv = srv
	return srv, fp, ts
}

// call sends a JSON request and returns the status and body.
func call(t *testing.T, method, url string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// registerVia registers ch through POST /_sim/channels, as the browser suite does.
func registerVia(t *testing.T, ts *httptest.Server, ch RegisteredChannel) {
	t.Helper()
	status, body := call(t, "POST", ts.URL+"/_sim/channels", map[string]any{
		"id": ch.ID, "kind": ch.Kind, "webhook_url": ch.WebhookURL, "secrets": ch.Secrets, "config": ch.Config})
	if status != http.StatusNoContent {
		t.Fatalf("register %s: %d %s", ch.ID, status, body)
	}
}

func testChannel(t *testing.T, fp *fakeParley, id string) RegisteredChannel {
	t.Helper()
	for _, ch := range testChannels(fp.ts.URL) {
		if ch.ID == id {
			return ch
		}
	}
	t.Fatalf("no test channel %s", id)
	return RegisteredChannel{}
}

func simRequests(t *testing.T, ts *httptest.Server, channelID string) []SimRequest {
	t.Helper()
	status, body := call(t, "GET", ts.URL+"/_sim/requests?channel="+channelID, nil)
	if status != http.StatusOK {
		t.Fatalf("requests: %d %s", status, body)
	}
	var out []SimRequest
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("requests: %v: %s", err, body)
	}
	return out
}

// TestControlWhatsApp registers a WhatsApp channel through the control API,
// plays a text and an image, and checks the real adapter verifies and parses
// both, the image downloads through the adapter, and the requests listing
// shows the download and a reply sent through the Graph API fake.
func TestControlWhatsApp(t *testing.T) {
	srv, fp, ts := newControl(t)
	ctx := context.Background()
	ch := testChannel(t, fp, "ch-wa")
	registerVia(t, ts, ch)
	got, ok := srv.Channel("ch-wa")
	if !ok || got.WebhookURL != ch.WebhookURL || got.Secrets["app_secret"] != "wa-app-secret" || got.str("phone_number_id") != "109876543210987" {
		t.Fatalf("registered channel: %+v", got)
	}
	if reqs := simRequests(t, ts, "ch-wa"); len(reqs) != 0 {
		t.Fatalf("fresh channel lists %d requests", len(reqs))
	}

	inbound := func(body map[string]any) string {
		t.Helper()
		status, b := call(t, "POST", ts.URL+"/_sim/whatsapp/ch-wa/inbound", body)
		if status != http.StatusOK {
			t.Fatalf("inbound: %d %s", status, b)
		}
		var ans struct{ ID string }
		if err := json.Unmarshal(b, &ans); err != nil || !strings.HasPrefix(ans.ID, "wamid.") {
			t.Fatalf("inbound answer %s (%v)", b, err)
		}
		return ans.ID
	}
	textID := inbound(map[string]any{"from": "15552223333", "name": "Ana Lima", "text": "Olá! Where is my order? 📦"})
	imageID := inbound(map[string]any{"from": "15552223333", "name": "Ana Lima", "image": true, "caption": "the box"})

	evs := fp.waitEvents("ch-wa", channel.EventMessage, 2)
	text, img := evs[0], evs[1]
	if text.ExternalID != textID || text.Kind != inbox.KindText || text.Text != "Olá! Where is my order? 📦" ||
		text.Sender.Identifier != "15552223333" || text.Sender.Name != "Ana Lima" || text.Direction != "inbound" || text.IsGroup {
		t.Errorf("text event: %+v", text)
	}
	if img.ExternalID != imageID || img.Kind != inbox.KindImage || len(img.Attachments) != 1 ||
		img.Attachments[0].MimeType != "image/png" || img.Text != "the box" {
		t.Fatalf("image event: %+v", img)
	}
	a, _ := fp.reg.Get(KindWhatsApp)
	cfg := cfgOf(srv, got)
	rc, mime, err := a.FetchMedia(ctx, cfg, img.Attachments[0].ProviderRef)
	if err != nil {
		t.Fatalf("FetchMedia: %v", err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if mime != "image/png" || !bytes.Equal(data, sampleImage()) {
		t.Errorf("fetched %q, %d bytes", mime, len(data))
	}

	res, err := a.Send(ctx, cfg, channel.Outgoing{MessageID: "m1", To: "15552223333", Text: "Ships today", ReplyToID: textID})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	statuses := fp.waitEvents("ch-wa", channel.EventStatus, 3)
	if statuses[2].TargetID != res.ExternalID || statuses[2].Status != inbox.MsgRead {
		t.Errorf("last status %+v, want read of %s", statuses[2], res.ExternalID)
	}

	reqs := simRequests(t, ts, "ch-wa")
	var sends, downloads int
	for _, r := range reqs {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/109876543210987/messages") {
			sends++
			body, _ := r.Body.(map[string]any)
			txt, _ := body["text"].(map[string]any)
			if r.Status != http.StatusOK || body["to"] != "15552223333" || txt["body"] != "Ships today" {
				t.Errorf("listed send: %+v", r)
			}
		}
		if r.Method == http.MethodGet && (strings.HasPrefix(r.Path, "/whatsapp_business/") || strings.HasSuffix(r.Path, "/"+img.Attachments[0].ProviderRef)) {
			downloads++
		}
		if r.At.IsZero() {
			t.Errorf("request without time: %+v", r)
		}
	}
	if sends != 1 || downloads != 2 {
		t.Errorf("requests list %d sends and %d media requests, want 1 and 2 (lookup + download): %+v", sends, downloads, reqs)
	}
	// another WhatsApp channel's traffic is not listed
	other := ch
	other.ID, other.Config = "ch-wa2", map[string]any{"phone_number_id": "200000000000002"}
	other.Secrets = map[string]string{"access_token": "EAAGother", "app_secret": "s2"}
	registerVia(t, ts, other)
	if reqs := simRequests(t, ts, "ch-wa2"); len(reqs) != 0 {
		t.Errorf("the second channel lists the first one's requests: %+v", reqs)
	}
}

// TestControlTelegramGroup plays two members of a supergroup and a private
// chat through the control API: the real adapter verifies the secret token and
// parses group, title and sender names; a bot reply shows in the requests.
func TestControlTelegramGroup(t *testing.T) {
	srv, fp, ts := newControl(t)
	ctx := context.Background()
	ch := testChannel(t, fp, "ch-tg")
	registerVia(t, ts, ch)

	inbound := func(body map[string]any) string {
		t.Helper()
		status, b := call(t, "POST", ts.URL+"/_sim/telegram/ch-tg/inbound", body)
		if status != http.StatusOK {
			t.Fatalf("inbound: %d %s", status, b)
		}
		var ans struct{ ID string }
		if err := json.Unmarshal(b, &ans); err != nil || ans.ID == "" {
			t.Fatalf("inbound answer %s (%v)", b, err)
		}
		return ans.ID
	}
	group := map[string]any{"chat_id": -1001234567890, "chat_title": "Acme Buyers"}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	id1 := inbound(with(group, "from_id", 501, "from_name", "Maria Gomez", "text", "Is the sale on?"))
	id2 := inbound(with(group, "from_id", 502, "from_name", "Li", "username", "li_wei", "text", "Same question"))
	id3 := inbound(map[string]any{"from_id": 503, "from_name": "Petr Ivanov", "text": "Private hello"})

	evs := fp.waitEvents("ch-tg", channel.EventMessage, 3)
	wants := []struct {
		id, chat, title, sender, senderID, text string
		group                                   bool
	}{
		{id1, "-1001234567890", "Acme Buyers", "Maria Gomez", "501", "Is the sale on?", true},
		{id2, "-1001234567890", "Acme Buyers", "Li", "502", "Same question", true},
		{id3, "503", "", "Petr Ivanov", "503", "Private hello", false},
	}
	for i, w := range wants {
		e := evs[i]
		if e.ExternalID != w.id || !strings.HasPrefix(w.id, w.chat+":") || e.ChatID != w.chat || e.IsGroup != w.group || e.GroupTitle != w.title ||
			e.Sender.Name != w.sender || e.Sender.Identifier != w.senderID || e.Text != w.text || e.Direction != "inbound" {
			t.Errorf("event %d: %+v, want %+v", i, e, w)
		}
	}
	if id1 == id2 {
		t.Errorf("two messages share the id %s", id1)
	}

	a, _ := fp.reg.Get(KindTelegram)
	got, _ := srv.Channel("ch-tg")
	if _, err := a.Send(ctx, cfgOf(srv, got), channel.Outgoing{MessageID: "m1", To: "-1001234567890", ChatID: "-1001234567890", IsGroup: true, Text: "Yes, until Sunday"}); err != nil {
		t.Fatalf("send: %v", err)
	}
	reqs := simRequests(t, ts, "ch-tg")
	if len(reqs) != 1 || reqs[0].Method != "sendMessage" {
		t.Fatalf("requests: %+v", reqs)
	}
	params, _ := reqs[0].Body.(map[string]any)
	if params["text"] != "Yes, until Sunday" || !strings.Contains(strings.Trim(string(mustMarshal(t, params["chat_id"])), `"`), "-1001234567890") {
		t.Errorf("sendMessage params: %+v", params)
	}
	fp.mu.Lock()
	denied := fp.denied["ch-tg"]
	fp.mu.Unlock()
	if denied != 0 {
		t.Errorf("Parley refused %d deliveries", denied)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestControlRefusedDelivery: when Parley refuses the webhook (it knows
// another secret), the control API answers 400 and says so.
func TestControlRefusedDelivery(t *testing.T) {
	_, fp, ts := newControl(t)
	registerVia(t, ts, testChannel(t, fp, "ch-tg"))
	registerVia(t, ts, testChannel(t, fp, "ch-wa"))
	fp.mu.Lock()
	fp.override["ch-tg"] = map[string]string{"bot_token": "7000000001:AAHsimTokenForTests_abc", "webhook_secret": "rotated"}
	fp.override["ch-wa"] = map[string]string{"access_token": "EAAGwa-token", "app_secret": "rotated"}
	fp.mu.Unlock()
	for _, tc := range []struct{ path, body string }{
		{"/_sim/telegram/ch-tg/inbound", `{"from_id":7,"from_name":"Ann","text":"hi"}`},
		{"/_sim/whatsapp/ch-wa/inbound", `{"from":"15550001","text":"hi"}`},
	} {
		status, b := call(t, "POST", ts.URL+tc.path, tc.body)
		if status != http.StatusBadRequest || !strings.Contains(string(b), "deliver") {
			t.Errorf("%s: %d %s, want 400 naming the failed delivery", tc.path, status, b)
		}
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.denied["ch-tg"] == 0 || fp.denied["ch-wa"] == 0 || len(fp.events["ch-tg"])+len(fp.events["ch-wa"]) != 0 {
		t.Errorf("denied %v, events %d/%d", fp.denied, len(fp.events["ch-tg"]), len(fp.events["ch-wa"]))
	}
}

// TestControlBadInput: malformed or incomplete requests are refused with 400
// (404 for unknown endpoints) and nothing is delivered.
func TestControlBadInput(t *testing.T) {
	_, fp, ts := newControl(t)
	registerVia(t, ts, testChannel(t, fp, "ch-wa"))
	registerVia(t, ts, testChannel(t, fp, "ch-tg"))
	tests := []struct {
		name, method, path, body string
		want                     int
		contains                 string
	}{
		{"register: not JSON", "POST", "/_sim/channels", `{"id":`, 400, "bad channel"},
		{"register: no webhook", "POST", "/_sim/channels", `{"id":"x","kind":"telegram"}`, 400, "required"},
		{"register: unknown kind", "POST", "/_sim/channels", `{"id":"x","kind":"fax","webhook_url":"http://127.0.0.1:9/"}`, 400, "unsupported channel kind"},
		{"register: whatsapp without token", "POST", "/_sim/channels", `{"id":"x","kind":"whatsapp","webhook_url":"http://127.0.0.1:9/","config":{"phone_number_id":"1"}}`, 400, "access_token"},
		{"whatsapp: unknown channel", "POST", "/_sim/whatsapp/nope/inbound", `{"from":"1555","text":"hi"}`, 400, "no registered whatsapp channel"},
		{"whatsapp: telegram channel", "POST", "/_sim/whatsapp/ch-tg/inbound", `{"from":"1555","text":"hi"}`, 400, "no registered whatsapp channel"},
		{"whatsapp: no from", "POST", "/_sim/whatsapp/ch-wa/inbound", `{"text":"hi"}`, 400, "from"},
		{"whatsapp: not JSON", "POST", "/_sim/whatsapp/ch-wa/inbound", `hi`, 400, "bad message"},
		{"telegram: whatsapp channel", "POST", "/_sim/telegram/ch-wa/inbound", `{"from_id":1,"from_name":"A","text":"hi"}`, 400, "no registered telegram channel"},
		{"telegram: no from_id", "POST", "/_sim/telegram/ch-tg/inbound", `{"from_name":"A","text":"hi"}`, 400, "from_id"},
		{"telegram: negative from_id", "POST", "/_sim/telegram/ch-tg/inbound", `{"from_id":-5,"from_name":"A","text":"hi"}`, 400, "from_id"},
		{"telegram: no name", "POST", "/_sim/telegram/ch-tg/inbound", `{"from_id":1,"from_name":"  ","text":"hi"}`, 400, "from_name"},
		{"telegram: no text", "POST", "/_sim/telegram/ch-tg/inbound", `{"from_id":1,"from_name":"A"}`, 400, "text"},
		{"telegram: positive group id", "POST", "/_sim/telegram/ch-tg/inbound", `{"chat_id":5,"chat_title":"G","from_id":1,"from_name":"A","text":"hi"}`, 400, "negative"},
		{"telegram: private chat of someone else", "POST", "/_sim/telegram/ch-tg/inbound", `{"chat_id":9,"from_id":1,"from_name":"A","text":"hi"}`, 400, "private chat"},
		{"telegram: chat_id a string", "POST", "/_sim/telegram/ch-tg/inbound", `{"chat_id":"-100","chat_title":"G","from_id":1,"from_name":"A","text":"hi"}`, 400, "bad message"},
		{"requests: no channel", "GET", "/_sim/requests", ``, 400, "channel is required"},
		{"requests: unknown channel", "GET", "/_sim/requests?channel=nope", ``, 400, "no registered channel"},
		{"unknown endpoint", "POST", "/_sim/sms/ch-wa/inbound", `{}`, 404, "unknown control endpoint"},
		{"wrong method", "GET", "/_sim/channels", ``, 404, "unknown control endpoint"},
		{"inbound by GET", "GET", "/_sim/telegram/ch-tg/inbound", ``, 404, "unknown control endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, b := call(t, tc.method, ts.URL+tc.path, tc.body)
			if status != tc.want || !strings.Contains(string(b), tc.contains) {
				t.Errorf("%s %s = %d %q, want %d containing %q", tc.method, tc.path, status, b, tc.want, tc.contains)
			}
		})
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if n := len(fp.events["ch-wa"]) + len(fp.events["ch-tg"]); n != 0 {
		t.Errorf("bad input delivered %d events", n)
	}
}

// FuzzControlTelegramInbound: any body gets 200 (a delivered update the real
// adapter verifies and parses) or 400, never a server error.
func FuzzControlTelegramInbound(f *testing.F) {
	for _, s := range []string{
		`{"chat_id":-1001,"chat_title":"G","from_id":1,"from_name":"A B","text":"hi"}`,
		`{"from_id":1,"from_name":"A","text":"hi"}`,
		`{"from_id":1e30,"from_name":"A","text":"hi"}`,
		`{"chat_id":-1,"chat_title":"\u0000","from_id":9,"from_name":"\ud83d\ude00","text":"\u202e"}`,
		`[]`, `null`, ``,
	} {
		f.Add(s)
	}
	fp := &fakeParley{t: f, reg: adapters(), events: map[string][]channel.Event{}, denied: map[string]int{},
		override: map[string]map[string]string{}, notify: make(chan struct{}, 1)}
	fp.ts = httptest.NewServer(http.HandlerFunc(fp.serve))
	srv := New(ServerOptions{StatusDelay: time.Millisecond})
	ts := httptest.NewServer(NewControl(srv))
	defer func() { srv.Close(); ts.Close(); fp.ts.Close() }()
	srv.SetURL(ts.URL)
	fp.srv = srv
	ch := RegisteredChannel{ID: "ch-tg", Kind: KindTelegram, WebhookURL: fp.ts.URL + "/webhooks/ch-tg",
		Secrets: map[string]string{"bot_token": "7000000001:AAHsimTokenForTests_abc", "webhook_secret": "tg_secret-1"}}
	if err := srv.Register(ch); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		resp, err := http.Post(ts.URL+"/_sim/telegram/ch-tg/inbound", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		if resp.StatusCode == http.StatusOK && !json.Valid(b) {
			t.Fatalf("answer is not JSON: %q", b)
		}
	})
}
