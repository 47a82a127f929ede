package main

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

	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/providersim"
)

// apiCall is a bearer-authenticated JSON call against a running server.
type apiCall struct {
	t     *testing.T
	base  string
	token string
}

func (a apiCall) do(method, path string, body any, want int, out any) []byte {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		a.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return b
}

// eventually polls f until it reports true or the deadline passes.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !f(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestWhatsAppEndToEnd drives the whole pipeline through the real serve command
// and the provider simulator: signed webhook → inbound log → worker → API;
// lazy media fetch; reply → outbox → Graph API send → status webhooks → read.
func TestWhatsAppEndToEnd(t *testing.T) {
	sim := providersim.New(providersim.ServerOptions{StatusDelay: 20 * time.Millisecond})
	simHTTP := httptest.NewServer(providersim.NewControl(sim))
	defer simHTTP.Close()
	sim.SetURL(simHTTP.URL)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dataDir := t.TempDir()
	env := envFor(map[string]string{"PARLEY_DATA_DIR": dataDir, "PARLEY_ADDR": "127.0.0.1:0"})
	srv := startServe(ctx, t, env)
	api := apiCall{t: t, base: srv.base}
	var setup struct{ Workspace inbox.Workspace }
	api.do("POST", "/api/v1/setup", map[string]string{"workspace": "Acme", "name": "Ann", "email": "ann@example.com", "password": "password123"}, 201, &setup)
	// Log in with the cookie, make a token, then use the bearer token.
	jar := &cookieClient{}
	login := jar.post(t, srv.base+"/api/v1/auth/login", `{"email":"ann@example.com","password":"password123"}`, "")
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	_ = json.Unmarshal(login, &me)
	var tok struct{ Token string }
	_ = json.Unmarshal(jar.post(t, srv.base+"/api/v1/workspaces/"+setup.Workspace.ID+"/tokens", `{"name":"e2e"}`, me.CSRF), &tok)
	api.token = tok.Token
	ws := "/api/v1/workspaces/" + setup.Workspace.ID

	secrets := map[string]string{"access_token": "EAAtoken", "app_secret": "app-secret-1", "verify_token": "verify-1"}
	config := map[string]any{"phone_number_id": "PNID1", "waba_id": "WABA1", "api_base_url": sim.BaseURL("whatsapp")}
	var ch inbox.Channel
	api.do("POST", ws+"/channels", map[string]any{"kind": "whatsapp", "name": "WhatsApp", "config": config, "secrets": secrets}, 201, &ch)
	if ch.WebhookURL != srv.base+"/webhooks/"+ch.ID || ch.Secrets["app_secret"] != (inbox.SecretState{Configured: true}) {
		t.Fatalf("channel: %+v", ch)
	}
	if err := sim.Register(providersim.RegisteredChannel{ID: ch.ID, Kind: "whatsapp", WebhookURL: ch.WebhookURL, Secrets: secrets, Config: config}); err != nil {
		t.Fatal(err)
	}

	// Meta's handshake, and an unsigned webhook refused with nothing stored.
	if b := api.do("GET", "/webhooks/"+ch.ID+"?hub.mode=subscribe&hub.challenge=4242&hub.verify_token=verify-1", nil, 200, nil); string(b) != "4242" {
		t.Fatalf("handshake answered %q", b)
	}
	api.do("GET", "/webhooks/"+ch.ID+"?hub.mode=subscribe&hub.challenge=4242&hub.verify_token=wrong", nil, 403, nil)
	api.do("POST", "/webhooks/"+ch.ID, map[string]any{"object": "whatsapp_business_account", "entry": []any{}}, 401, nil)

	// Two customer messages: a text and an image.
	control := apiCall{t: t, base: simHTTP.URL}
	control.do("POST", "/_sim/whatsapp/"+ch.ID+"/inbound", map[string]any{"from": "15552223333", "name": "Ana Lima", "text": "Olá! Where is my order? 📦"}, 200, nil)
	control.do("POST", "/_sim/whatsapp/"+ch.ID+"/inbound", map[string]any{"from": "15552223333", "name": "Ana Lima", "image": true, "caption": "the box"}, 200, nil)

	var convs inbox.Page[inbox.Conversation]
	var msgs inbox.Page[inbox.Message]
	eventually(t, "two inbound messages in one conversation", func() bool {
		api.do("GET", ws+"/conversations?view=all", nil, 200, &convs)
		if len(convs.Items) != 1 || convs.Items[0].UnreadCount != 2 {
			return false
		}
		api.do("GET", ws+"/conversations/"+convs.Items[0].ID+"/messages", nil, 200, &msgs)
		return len(msgs.Items) == 2
	})
	conv := convs.Items[0]
	if conv.ChannelKind != "whatsapp" || conv.Contact.Name != "Ana Lima" || conv.UnreadCount != 2 || conv.IsGroup || conv.LastInboundAt == nil {
		t.Fatalf("conversation: %+v", conv)
	}
	text, img := msgs.Items[0], msgs.Items[1]
	if text.Kind != inbox.KindText || text.Text != "Olá! Where is my order? 📦" || text.Direction != "inbound" || text.Sender.Type != "contact" || text.Sender.Name != "Ana Lima" || !strings.HasPrefix(text.ExternalID, "wamid.") {
		t.Fatalf("text message: %+v", text)
	}
	if img.Kind != inbox.KindImage || img.Text != "the box" || len(img.Attachments) != 1 || img.Attachments[0].MimeType != "image/png" {
		t.Fatalf("image message: %+v", img)
	}
	var contact inbox.Contact
	api.do("GET", ws+"/contacts/"+conv.Contact.ID, nil, 200, &contact)
	if len(contact.Identities) != 1 || contact.Identities[0].Identifier != "15552223333" || len(contact.Phones) != 1 || contact.Phones[0] != "+15552223333" {
		t.Fatalf("contact: %+v", contact)
	}
	// The image is fetched from the provider on first open, with the Bearer token.
	png := api.do("GET", ws+"/attachments/"+img.Attachments[0].ID, nil, 200, nil)
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("attachment bytes: %q", png[:min(len(png), 16)])
	}
	before := len(msgs.Items) // status webhooks must not add messages

	// Reply: queued at once, sent through the Graph API, then sent → delivered → read.
	var reply inbox.Message
	api.do("POST", ws+"/conversations/"+conv.ID+"/messages", map[string]any{"text": "Your order ships today 🚚", "reply_to_id": text.ID}, 202, &reply)
	if reply.Status != inbox.MsgQueued || reply.Direction != "outbound" {
		t.Fatalf("reply: %+v", reply)
	}
	eventually(t, "the reply to be read", func() bool {
		var m inbox.Message
		api.do("GET", ws+"/conversations/"+conv.ID+"/messages", nil, 200, &msgs)
		for _, x := range msgs.Items {
			if x.ID == reply.ID {
				m = x
			}
		}
		return m.Status == inbox.MsgRead && strings.HasPrefix(m.ExternalID, "wamid.")
	})
	if len(msgs.Items) != before+1 {
		t.Fatalf("status webhooks created messages: %d items", len(msgs.Items))
	}
	sends := sim.Meta().Sends()
	if len(sends) != 1 || !strings.Contains(string(sends[0].Body), "Your order ships today") || !strings.Contains(string(sends[0].Body), text.ExternalID) {
		t.Fatalf("provider received %d sends: %+v", len(sends), sends)
	}
	var health inbox.ChannelHealth
	api.do("GET", ws+"/channels/"+ch.ID+"/health", nil, 200, &health)
	if health.Status != "active" || health.LastInboundAt == nil || health.LastOutboundAt == nil || health.LastError != "" {
		t.Fatalf("health after traffic: %+v", health)
	}

	// /metrics counts the refused webhook and shows both SQLite pools.
	metrics := string(api.do("GET", "/metrics", nil, 200, nil))
	for _, want := range []string{`parley_webhooks_unverified_total{kind="whatsapp"} 1`, `parley_webhooks_received_total{kind="whatsapp"}`, `pool="write"`, `pool="read"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A free-form send outside the 24-hour window would be refused before queueing;
	// a too-long text is refused now with a message that says what to do.
	body := api.do("POST", ws+"/conversations/"+conv.ID+"/messages", map[string]any{"text": strings.Repeat("x", 4097)}, 400, nil)
	if !strings.Contains(string(body), "4096") {
		t.Fatalf("long text refusal: %s", body)
	}

	// The repair tools on the stopped server's data: re-normalizing the
	// inbound log finds the webhooks and creates nothing new; the media cache
	// dry run reports the cached image and removes nothing.
	cancel()
	if err := <-srv.done; err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Entries     int  `json:"entries"`
		NewMessages int  `json:"new_messages"`
		DryRun      bool `json:"dry_run"`
	}
	for _, dry := range []bool{true, false} {
		args := []string{"repair", "reprocess", "--channel", ch.ID, "--since", "1h"}
		if dry {
			args = append(args, "--dry-run")
		}
		var out syncBuffer
		if err := run(context.Background(), args, env, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(out.String()), &rep); err != nil || rep.Entries < 2 || rep.NewMessages != 0 || rep.DryRun != dry {
			t.Fatalf("reprocess (dry run %v): %v %s", dry, err, out.String())
		}
	}
	var media struct {
		Scanned   int   `json:"scanned"`
		KeptBytes int64 `json:"kept_bytes"`
		DryRun    bool  `json:"dry_run"`
	}
	var out syncBuffer
	if err := run(context.Background(), []string{"repair", "media-cache", "--dry-run"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out.String()), &media); err != nil || !media.DryRun || media.Scanned != 1 || media.KeptBytes == 0 {
		t.Fatalf("media-cache: %v %s", err, out.String())
	}
}

// cookieClient logs in with a cookie and sends CSRF-protected requests.
type cookieClient struct{ cookies []*http.Cookie }

func (c *cookieClient) post(t *testing.T, url, body, csrf string) []byte {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	c.cookies = append(c.cookies, resp.Cookies()...)
	return b
}
