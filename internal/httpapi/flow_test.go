package httpapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/httpapi/apitest"
	"github.com/parleyhq/parley/internal/inbox"
)

func TestInboxFlow(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) { testInboxFlow(t, pg) })
	}
}

func testInboxFlow(t *testing.T, pg bool) {
	e := newEnv(t, apitest.Options{Postgres: pg})
	f := seed(t, e, e.Owner, e.Workspace.ID, "a")
	o := e.Owner

	// Contacts: normalized on the way in, found again, duplicates detected.
	var c1, c2 inbox.Contact
	o.MustDo("POST", e.WS("/contacts"), map[string]any{"name": "Dana Diaz", "emails": []string{"Dana@Example.com"},
		"phones": []string{"+44 20 7946 0958"}, "tags": []string{"vip", "vip"}, "attributes": map[string]any{"plan": "pro"}}, 201, &c1)
	if c1.Emails[0] != "dana@example.com" || c1.Phones[0] != "+442079460958" || len(c1.Tags) != 1 || c1.Attributes["plan"] != "pro" {
		t.Fatalf("contact = %+v", c1)
	}
	o.MustDo("POST", e.WS("/contacts"), map[string]any{"name": "D. Diaz", "phones": []string{"+442079460958"}}, 201, &c2)
	var dups httpapi.ListResponse[inbox.Contact]
	o.MustDo("GET", e.WS("/contacts/"+c1.ID+"/duplicates"), nil, 200, &dups)
	if len(dups.Items) != 1 || dups.Items[0].ID != c2.ID {
		t.Fatalf("duplicates = %+v", dups.Items)
	}
	var page inbox.Page[inbox.Contact]
	o.MustDo("GET", e.WS("/contacts?q=dana&limit=10"), nil, 200, &page)
	if len(page.Items) != 1 || page.Items[0].ID != c1.ID {
		t.Fatalf("search = %+v", page.Items)
	}
	o.MustDo("GET", e.WS("/contacts?limit=1"), nil, 200, &page)
	if len(page.Items) != 1 || page.NextCursor == "" {
		t.Fatalf("first page = %d items, cursor %q", len(page.Items), page.NextCursor)
	}
	var merged inbox.Contact
	o.MustDo("POST", e.WS("/contacts/merge"), map[string]any{"primary_id": c1.ID, "merge_ids": []string{c2.ID}}, 200, &merged)
	if merged.ID != c1.ID {
		t.Fatalf("merged = %+v", merged)
	}
	o.MustDo("GET", e.WS("/contacts/"+c2.ID), nil, 404, nil)
	o.MustDo("PATCH", e.WS("/contacts/"+c1.ID), map[string]any{"blocked": true, "name": "Dana D."}, 200, &merged)
	if !merged.Blocked || merged.Name != "Dana D." || merged.Emails[0] != "dana@example.com" {
		t.Fatalf("patched = %+v", merged)
	}

	// Conversations: start (idempotent), assign, label, read state.
	var conv inbox.Conversation
	o.MustDo("POST", e.WS("/conversations"), map[string]string{"contact_id": c1.ID, "channel_id": f.channel}, 201, &conv)
	o.MustDo("POST", e.WS("/conversations"), map[string]string{"contact_id": c1.ID, "channel_id": f.channel}, 200, nil)
	agent := e.Login(f.agent.Email, apitest.Password)
	o.MustDo("PATCH", e.WS("/conversations/"+conv.ID), map[string]any{"assignee_id": f.agent.ID, "priority": "high", "team_id": f.team}, 200, &conv)
	if conv.AssigneeID == nil || *conv.AssigneeID != f.agent.ID || conv.Priority != "high" || conv.TeamID == nil {
		t.Fatalf("patched conversation = %+v", conv)
	}
	var mine inbox.Page[inbox.Conversation]
	agent.MustDo("GET", e.WS("/conversations?view=mine"), nil, 200, &mine)
	if len(mine.Items) != 1 || mine.Items[0].ID != conv.ID {
		t.Fatalf("agent's queue = %+v", mine.Items)
	}
	o.MustDo("POST", e.WS("/conversations/"+conv.ID+"/labels"), map[string][]string{"label_ids": {f.label}}, 200, &conv)
	if len(conv.Labels) != 1 {
		t.Fatalf("labels = %v", conv.Labels)
	}
	o.MustDo("DELETE", e.WS("/conversations/"+conv.ID+"/labels/"+f.label), nil, 200, &conv)
	if len(conv.Labels) != 0 {
		t.Fatalf("labels after delete = %v", conv.Labels)
	}
	o.MustDo("PATCH", e.WS("/conversations/"+conv.ID), map[string]any{"assignee_id": nil}, 200, &conv)
	if conv.AssigneeID != nil {
		t.Fatal("null did not unassign")
	}
	var rs inbox.ReadState
	o.MustDo("POST", e.WS("/conversations/"+conv.ID+"/read"), nil, 200, &rs)
	if rs.ConversationID != conv.ID || rs.UserID != e.OwnerUser.ID {
		t.Fatalf("read state = %+v", rs)
	}
	o.MustDo("POST", e.WS("/conversations/"+conv.ID+"/unread"), nil, 200, nil)
	o.MustDo("GET", e.WS("/conversations/"+conv.ID+"/participants"), nil, 200, nil)

	// Private notes are stored at once; mentions resolve to members.
	var note inbox.Message
	o.MustDo("POST", e.WS("/conversations/"+conv.ID+"/messages"), map[string]any{"text": "@Agent a can you check? cc @" + e.OwnerUser.Email, "private": true}, 202, &note)
	if !note.Private || note.Sender.ID != e.OwnerUser.ID || note.Sender.Type != "agent" || len(note.Mentions) != 2 {
		t.Fatalf("note = %+v", note)
	}
	var queued inbox.Message
	o.MustDo("POST", e.WS("/conversations/"+conv.ID+"/messages"), map[string]any{"text": "Hello Dana"}, 202, &queued)
	if queued.Status != inbox.MsgQueued || queued.Private || queued.Direction != "outbound" {
		t.Fatalf("queued = %+v", queued)
	}
	var msgs inbox.Page[inbox.Message]
	o.MustDo("GET", e.WS("/conversations/"+conv.ID+"/messages?limit=10"), nil, 200, &msgs)
	if len(msgs.Items) != 2 || msgs.Items[0].ID != note.ID || msgs.Items[1].ID != queued.ID {
		t.Fatalf("messages (oldest first) = %+v", msgs.Items)
	}
	var reacted inbox.Message
	o.MustDo("POST", e.WS("/messages/"+note.ID+"/reactions"), map[string]string{"emoji": "👍"}, 200, &reacted)
	if len(reacted.Reactions) != 1 || reacted.Reactions[0].Emoji != "👍" {
		t.Fatalf("reactions = %+v", reacted.Reactions)
	}
	o.MustDo("DELETE", e.WS("/messages/"+note.ID+"/reactions"), nil, 200, &reacted)
	if len(reacted.Reactions) != 0 {
		t.Fatalf("reactions after delete = %+v", reacted.Reactions)
	}

	// Sync: snapshot, then the changes after its cursor; bad cursors are 410 conflict.
	var snap inbox.Snapshot
	o.MustDo("GET", e.WS("/sync/snapshot"), nil, 200, &snap)
	if snap.Cursor == "" || len(snap.Conversations) < 2 || len(snap.Channels) != 1 || !strings.HasSuffix(snap.Channels[0].WebhookURL, "/webhooks/"+f.channel) {
		t.Fatalf("snapshot = cursor %q, %d conversations, channels %+v", snap.Cursor, len(snap.Conversations), snap.Channels)
	}
	o.MustDo("PATCH", e.WS("/conversations/"+conv.ID), map[string]any{"status": "resolved"}, 200, nil)
	agent.MustDo("POST", e.WS("/conversations/"+conv.ID+"/read"), nil, 200, nil)
	var batch inbox.ChangeBatch
	o.MustDo("GET", e.WS("/sync?since="+snap.Cursor), nil, 200, &batch)
	sawConv := false
	for _, ch := range batch.Changes {
		if ch.Entity == inbox.EntityConversation && ch.ID == conv.ID {
			sawConv = true
		}
		if ch.Entity == inbox.EntityReadState {
			t.Fatalf("owner received the agent's read state: %s", ch.Data)
		}
	}
	if !sawConv || batch.Cursor == snap.Cursor {
		t.Fatalf("changes since snapshot = %+v", batch)
	}
	agent.MustDo("GET", e.WS("/sync?since="+snap.Cursor), nil, 200, &batch)
	sawRead := false
	for _, ch := range batch.Changes {
		sawRead = sawRead || ch.Entity == inbox.EntityReadState
	}
	if !sawRead {
		t.Fatal("agent did not get their own read state change")
	}
	for _, bad := range []string{"999999999", "abc", "-1"} {
		r := o.Do("GET", e.WS("/sync?since="+bad), nil)
		if r.Status != http.StatusGone || r.Error(t).Code != inbox.Conflict {
			t.Errorf("since=%s: %d %s", bad, r.Status, r.Body)
		}
	}
}

func TestChannelSecrets(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	o := e.Owner
	var ch inbox.Channel
	r := o.MustDo("POST", e.WS("/channels"), map[string]any{"kind": "test", "name": "Support line",
		"config": map[string]any{"region": "eu"}, "secrets": map[string]string{"token": "s3cr3t-value", "extra": "other-secret"}}, 201, &ch)
	if strings.Contains(string(r.Body), "s3cr3t-value") || strings.Contains(string(r.Body), "other-secret") {
		t.Fatalf("response leaks a secret: %s", r.Body)
	}
	if !ch.Secrets["token"].Configured || !ch.Secrets["extra"].Configured || ch.WebhookURL != "https://parley.test/webhooks/"+ch.ID || ch.Config["region"] != "eu" {
		t.Fatalf("channel = %s", r.Body)
	}
	stored, err := e.Store.GetChannel(context.Background(), e.Workspace.ID, ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored.SecretsEnc), "s3cr3t") {
		t.Fatal("secrets stored in clear")
	}
	m, err := e.Secrets.OpenMap(stored.SecretsEnc)
	if err != nil || m["token"] != "s3cr3t-value" {
		t.Fatalf("sealed secrets = %v, %v", m, err)
	}
	// PATCH merges secrets: a new value replaces, "" removes, others stay.
	id := ch.ID
	ch = inbox.Channel{}
	r = o.MustDo("PATCH", e.WS("/channels/"+id), map[string]any{"name": "Renamed", "secrets": map[string]string{"token": "rotated", "extra": ""}}, 200, &ch)
	if ch.Name != "Renamed" || ch.Secrets["extra"].Configured || !ch.Secrets["token"].Configured || strings.Contains(string(r.Body), "rotated") {
		t.Fatalf("patched = %s", r.Body)
	}
	stored, _ = e.Store.GetChannel(context.Background(), e.Workspace.ID, ch.ID)
	if m, _ := e.Secrets.OpenMap(stored.SecretsEnc); m["token"] != "rotated" || len(m) != 1 {
		t.Fatalf("after patch = %v", m)
	}
	// Removing the required secret is refused by the adapter's ValidateConfig.
	if r := o.Do("PATCH", e.WS("/channels/"+ch.ID), map[string]any{"secrets": map[string]string{"token": ""}}); r.Status != 400 {
		t.Fatalf("removing a required secret: %d", r.Status)
	}
	if r := o.Do("PATCH", e.WS("/channels/"+ch.ID), map[string]any{"kind": "other"}); r.Status != 400 {
		t.Fatalf("changing kind: %d", r.Status)
	}
	for _, path := range []string{"/channels", "/channels/" + ch.ID, "/sync/snapshot"} {
		if b := o.MustDo("GET", e.WS(path), nil, 200, nil).Body; strings.Contains(string(b), "rotated") || !strings.Contains(string(b), `"configured":true`) {
			t.Fatalf("GET %s: %s", path, b)
		}
	}
	var health inbox.ChannelHealth
	o.MustDo("GET", e.WS("/channels/"+ch.ID+"/health"), nil, 200, &health)
	if health.ID != ch.ID || health.Status == "" || health.LastInboundAt != nil || health.LastOutboundAt != nil || health.LastError != "" {
		t.Fatalf("health = %+v", health)
	}

	// Provider accounts: same sealing.
	var acc inbox.ProviderAccount
	r = o.MustDo("POST", e.WS("/provider-accounts"), map[string]any{"provider": "wappi", "name": "Main", "secrets": map[string]string{"api_token": "wappi-token"}}, 201, &acc)
	if strings.Contains(string(r.Body), "wappi-token") || !acc.Secrets["api_token"].Configured {
		t.Fatalf("account = %s", r.Body)
	}
	o.MustDo("PATCH", e.WS("/provider-accounts/"+acc.ID), map[string]any{"name": "Main 2"}, 200, &acc)
	storedAcc, _ := e.Store.GetProviderAccount(context.Background(), e.Workspace.ID, acc.ID)
	if m, _ := e.Secrets.OpenMap(storedAcc.SecretsEnc); m["api_token"] != "wappi-token" || acc.Name != "Main 2" {
		t.Fatalf("account secrets after rename = %v", m)
	}
	o.MustDo("DELETE", e.WS("/provider-accounts/"+acc.ID), nil, 204, nil)
	o.MustDo("DELETE", e.WS("/channels/"+ch.ID), nil, 204, nil)
	o.MustDo("GET", e.WS("/channels/"+ch.ID), nil, 404, nil)
}

func TestOperations(t *testing.T) {
	var busDown error
	e := newEnv(t, apitest.Options{Configure: func(d *httpapi.Deps) {
		d.Ready = map[string]func(context.Context) error{"bus": func(context.Context) error { return busDown }}
	}})
	c := e.NewClient()
	c.MustDo("GET", "/healthz", nil, 200, nil)
	var ready httpapi.ReadyResponse
	c.MustDo("GET", "/readyz", nil, 200, &ready)
	if ready.Checks["database"] != "ok" || ready.Checks["bus"] != "ok" {
		t.Fatalf("ready = %+v", ready)
	}
	busDown = errors.New("nats: no servers")
	c.MustDo("GET", "/readyz", nil, 503, &ready)
	if ready.Checks["bus"] != "unavailable" || ready.Checks["database"] != "ok" {
		t.Fatalf("ready = %+v", ready)
	}
	r := c.DoHeaders("GET", "/api/v1/setup", nil, http.Header{"X-Request-Id": {"abc-123"}})
	if r.Header.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("request id = %q", r.Header.Get("X-Request-Id"))
	}
	if id := c.DoHeaders("GET", "/healthz", nil, http.Header{"X-Request-Id": {strings.Repeat("x", 65)}}).Header.Get("X-Request-Id"); len(id) != 24 {
		t.Fatalf("generated request id = %q", id)
	}
	// Made-up methods share one label value: clients cannot create series.
	for _, method := range []string{"M0", "M1", "BREW"} {
		c.Do(method, "/healthz", nil)
	}
	m := string(c.MustDo("GET", "/metrics", nil, 200, nil).Body)
	for _, want := range []string{
		`parley_http_request_duration_seconds_count{method="GET",route="GET /readyz",status="503"} 1`,
		`route="POST /api/v1/auth/login",status="200"`,
		`method="OTHER"`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, unwanted := range []string{`method="M0"`, `method="BREW"`} {
		if strings.Contains(m, unwanted) {
			t.Errorf("metrics have %s", unwanted)
		}
	}
	// A panicking handler is a 500 internal with the error body, and the server survives.
	e2 := newEnv(t, apitest.Options{NoSetup: true, Configure: func(d *httpapi.Deps) {
		d.Routes = append(d.Routes, httpapi.Route{Method: "GET", Path: "/api/v1/boom", Access: httpapi.Public,
			Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })})
	}})
	r = e2.NewClient().Do("GET", "/api/v1/boom", nil)
	if r.Status != 500 || r.Error(t).Code != inbox.Internal || strings.Contains(string(r.Body), "boom") {
		t.Fatalf("panic: %d %s", r.Status, r.Body)
	}
	e2.NewClient().MustDo("GET", "/healthz", nil, 200, nil)
}

// TestAccessLogKeepsSecretsOut checks the access log names the route and
// request id but never bodies, passwords, tokens or query strings.
func TestAccessLogKeepsSecretsOut(t *testing.T) {
	var buf syncBuf
	e := newEnv(t, apitest.Options{Configure: func(d *httpapi.Deps) {
		d.Logger = slog.New(httpapi.LogHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}})
	bearer := e.Token(e.Owner, e.Workspace.ID)
	bearer.MustDo("POST", e.WS("/contacts"), map[string]string{"name": "Secret Sam"}, 201, nil)
	bearer.MustDo("GET", e.WS("/contacts?q=hidden-query"), nil, 200, nil)
	logs := buf.String()
	for _, leak := range []string{apitest.Password, bearer.Token, e.Owner.CSRF, "Secret Sam", "hidden-query"} {
		if strings.Contains(logs, leak) {
			t.Errorf("log contains %q", leak)
		}
	}
	for _, want := range []string{`"route":"POST /api/v1/workspaces/{ws}/contacts"`, `"request_id":"`, `"user_id":"` + e.OwnerUser.ID} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
