package ingest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/messenger"
	"github.com/parleyhq/parley/internal/inbox"
)

const (
	msgrPage      = "106540352242922"
	msgrToken     = "PAGE-TOKEN-xyz"
	msgrAppSecret = "msgr-app-secret"
)

// graphProfiles is a Graph API answering GET /v21.0/{PSID}?fields=... as
// providers.md §2 documents, counting the calls per PSID. A PSID listed in
// hold waits for its channel to be closed before answering.
type graphProfiles struct {
	mu    sync.Mutex
	calls map[string]int
	hold  map[string]chan struct{}
	srv   *httptest.Server
}

func newGraphProfiles(t *testing.T, profiles map[string]map[string]string) *graphProfiles {
	g := &graphProfiles{calls: map[string]int{}, hold: map[string]chan struct{}{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		psid := strings.TrimPrefix(r.URL.Path, "/v21.0/")
		g.mu.Lock()
		g.calls[psid]++
		hold := g.hold[psid]
		g.mu.Unlock()
		if hold != nil {
			<-hold
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+msgrToken || r.URL.Query().Get("fields") != "first_name,last_name,profile_pic" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":{"message":"Invalid OAuth access token","type":"OAuthException","code":190}}`))
			return
		}
		p, ok := profiles[psid]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":{"message":"Unsupported get request.","type":"GraphMethodException","code":100,"error_subcode":33}}`))
			return
		}
		out := map[string]string{"id": psid}
		for k, v := range p {
			out[k] = v
		}
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *graphProfiles) count(psid string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[psid]
}

// messengerEnv is the pipeline with the real Messenger adapter on a channel
// whose Graph API is g.
func messengerEnv(t *testing.T, g *graphProfiles, dbURL string) (*env, inbox.Channel) {
	e := newEnvURL(t, false, 0, dbURL)
	sealed, _ := json.Marshal(map[string]string{"page_access_token": msgrToken, "app_secret": msgrAppSecret, "verify_token": "v"})
	ch, err := e.db.CreateChannel(context.Background(), e.ws, inbox.Channel{Kind: messenger.Kind, Name: "Page",
		Config: map[string]any{"page_id": msgrPage, "api_base_url": g.srv.URL + "/v21.0"}, SecretsEnc: sealed})
	if err != nil {
		t.Fatal(err)
	}
	e.stop()
	e.extra = []channel.Adapter{messenger.New()}
	e.startWith(t, e.db, true)
	return e, ch
}

// postMessenger delivers a signed Messenger webhook (providers.md §2).
func postMessenger(t *testing.T, e *env, ch inbox.Channel, psid, mid, text string) {
	t.Helper()
	body := []byte(`{"object":"page","entry":[{"id":"` + msgrPage + `","time":1700000000123,"messaging":[{"sender":{"id":"` + psid +
		`"},"recipient":{"id":"` + msgrPage + `"},"timestamp":1700000000000,"message":{"mid":"` + mid + `","text":"` + text + `"}}]}]}`)
	m := hmac.New(sha256.New, []byte(msgrAppSecret))
	m.Write(body)
	req, _ := http.NewRequest("POST", e.srv.URL+"/webhooks/"+ch.ID, bytes.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
}

func contactOf(t *testing.T, e *env, ch inbox.Channel, psid string) inbox.Contact {
	t.Helper()
	c, err := e.db.ContactByIdentity(context.Background(), e.ws, ch.ID, psid)
	if err != nil && !inbox.IsCode(err, inbox.NotFound) {
		t.Fatal(err)
	}
	return c
}

// TestSenderProfiles: a Messenger message from an unknown PSID ends with the
// contact named from the Graph profile, looked up once per sender; a
// contact an operator renamed keeps the operator's name.
func TestSenderProfiles(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testSenderProfiles(t, "sqlite:"+filepath.Join(t.TempDir(), "p.db")) })
	t.Run("postgres", func(t *testing.T) { testSenderProfiles(t, pgURL(t)) })
}

func testSenderProfiles(t *testing.T, dbURL string) {
	g := newGraphProfiles(t, map[string]map[string]string{
		"PSID-ANA": {"first_name": "Ana", "last_name": "Lima", "profile_pic": "https://cdn.example/ana.jpg"},
		"PSID-BO":  {"first_name": "Bo", "last_name": "Chen", "profile_pic": "https://cdn.example/bo.jpg"},
	})
	release := make(chan struct{})
	g.hold["PSID-BO"] = release
	e, ch := messengerEnv(t, g, dbURL)

	postMessenger(t, e, ch, "PSID-ANA", "m_1", "hi")
	eventually(t, "the contact named from the profile", func() bool {
		c := contactOf(t, e, ch, "PSID-ANA")
		return c.Name == "Ana Lima" && c.AvatarURL == "https://cdn.example/ana.jpg"
	})
	// More messages within the hour: no new lookup.
	postMessenger(t, e, ch, "PSID-ANA", "m_2", "again")
	postMessenger(t, e, ch, "PSID-ANA", "m_3", "and again")
	eventually(t, "all done", e.allDone(t, 3))

	// The operator renames Bo while his profile is being looked up.
	postMessenger(t, e, ch, "PSID-BO", "m_4", "hello")
	eventually(t, "Bo's lookup", func() bool { return g.count("PSID-BO") == 1 })
	bo := contactOf(t, e, ch, "PSID-BO")
	if bo.ID == "" || bo.Name != "" {
		t.Fatalf("before the lookup: %+v", bo)
	}
	if _, err := e.db.UpdateContact(context.Background(), e.ws, bo.ID, inbox.ContactPatch{Name: inbox.Some("Bo (VIP)")}); err != nil {
		t.Fatal(err)
	}
	close(release)
	eventually(t, "Bo's avatar", func() bool { return contactOf(t, e, ch, "PSID-BO").AvatarURL == "https://cdn.example/bo.jpg" })

	// A PSID the Graph API does not know stays unnamed and is not asked
	// about again within the hour.
	postMessenger(t, e, ch, "PSID-GONE", "m_5", "x")
	eventually(t, "the unknown PSID's lookup", func() bool { return g.count("PSID-GONE") == 1 })
	postMessenger(t, e, ch, "PSID-GONE", "m_6", "y")
	eventually(t, "all done", e.allDone(t, 6))

	e.stop() // waits for the background lookups
	if n := g.count("PSID-GONE"); n != 1 {
		t.Errorf("unknown PSID looked up %d times, want once", n)
	}
	if c := contactOf(t, e, ch, "PSID-BO"); c.Name != "Bo (VIP)" {
		t.Errorf("the operator's name was overwritten: %q", c.Name)
	}
	if n := g.count("PSID-ANA"); n != 1 {
		t.Errorf("Ana looked up %d times, want once", n)
	}
}

// TestProfileWanted: only the senders of inbound direct messages that came
// without a name are looked up.
func TestProfileWanted(t *testing.T) {
	msg := channel.Event{Type: channel.EventMessage, Direction: "inbound", ChatID: "U1", Sender: channel.Party{Identifier: "U1"}}
	with := func(f func(*channel.Event)) channel.Event { ev := msg; f(&ev); return ev }
	tests := []struct {
		name string
		ev   channel.Event
		want string
	}{
		{"unnamed sender", msg, "U1"},
		{"sender id from the chat", with(func(ev *channel.Event) { ev.Sender.Identifier = "" }), "U1"},
		{"named by the webhook", with(func(ev *channel.Event) { ev.Sender.Name = "Ana" }), ""},
		{"echo", with(func(ev *channel.Event) { ev.Direction = "outbound" }), ""},
		{"group", with(func(ev *channel.Event) { ev.IsGroup = true }), ""},
		{"reaction", with(func(ev *channel.Event) { ev.Type = channel.EventReaction }), ""},
		{"read", with(func(ev *channel.Event) { ev.Type = channel.EventRead }), ""},
	}
	for _, tc := range tests {
		if got := profileWanted(tc.ev); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
