package metasim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel/meta"
)

func TestMetaEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":"é"}`, `{"a":"\u00e9"}`},
		{`{"a":"😀"}`, `{"a":"\ud83d\ude00"}`},
		{`{"u":"https://x/y"}`, `{"u":"https:\/\/x\/y"}`},
		{`{"a":"ж€"}`, `{"a":"\u0436\u20ac"}`},
		{`{"a":"plain"}`, `{"a":"plain"}`},
	}
	for _, tc := range tests {
		got := string(MetaEscape([]byte(tc.in)))
		if got != tc.want {
			t.Errorf("MetaEscape(%s) = %s, want %s", tc.in, got, tc.want)
		}
		var a, b any
		if json.Unmarshal([]byte(tc.in), &a) != nil || json.Unmarshal([]byte(got), &b) != nil || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("escaped JSON must decode to the same value: %s", got)
		}
	}
	body := Encode(M{"t": "<b>&"})
	if !bytes.Equal(body, []byte(`{"t":"<b>&"}`)) {
		t.Errorf("no HTML escaping: %s", body)
	}
}

func newSim(t *testing.T, opts Options) (*Server, *httptest.Server) {
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.AddWhatsApp("PN", "TOK")
	s.AddPage("PAGE", "PTOK")
	return s, srv
}

func post(t *testing.T, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func errCode(m map[string]any) float64 {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return c
}

func TestWhatsAppSendValidation(t *testing.T) {
	s, srv := newSim(t, Options{EnforceWindow: true})
	u := srv.URL + "/v21.0/PN/messages"
	text := `{"messaging_product":"whatsapp","to":"155","type":"text","text":{"body":"hi"}}`
	tests := []struct {
		name   string
		token  string
		body   string
		status int
		code   float64
	}{
		{"no token", "", text, 401, 190},
		{"bad token", "x", text, 401, 190},
		{"no product", "TOK", `{"to":"155","type":"text","text":{"body":"hi"}}`, 400, 100},
		{"no to", "TOK", `{"messaging_product":"whatsapp","type":"text","text":{"body":"hi"}}`, 400, 100},
		{"empty body", "TOK", `{"messaging_product":"whatsapp","to":"155","type":"text","text":{"body":""}}`, 400, 100},
		{"media without link", "TOK", `{"messaging_product":"whatsapp","to":"155","type":"image","image":{}}`, 400, 100},
		{"unknown window enforced", "TOK", text, 400, 131047},
		{"template always allowed", "TOK", `{"messaging_product":"whatsapp","to":"155","type":"template","template":{"name":"hello_world","language":{"code":"en_US"}}}`, 200, 0},
		{"not json", "TOK", `{`, 400, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, m := post(t, u, tc.token, tc.body)
			if st != tc.status || errCode(m) != tc.code {
				t.Fatalf("got %d %v", st, m)
			}
		})
	}
	s.TouchInbound("155", time.Now())
	st, m := post(t, u, "TOK", text)
	msgs, _ := m["messages"].([]any)
	if st != 200 || len(msgs) != 1 || !strings.HasPrefix(msgs[0].(map[string]any)["id"].(string), "wamid.") {
		t.Fatalf("%d %v", st, m)
	}
	if len(s.Sends()) != len(tests)+1 {
		t.Errorf("every request is recorded: %d", len(s.Sends()))
	}
}

func TestFaultsAndConcurrency(t *testing.T) {
	s, srv := newSim(t, Options{})
	s.FailNext(2)
	u := srv.URL + "/v21.0/PN/messages"
	body := `{"messaging_product":"whatsapp","to":"155","type":"text","text":{"body":"hi"}}`
	for i, want := range []int{500, 500, 200} {
		if st, m := post(t, u, "TOK", body); st != want {
			t.Fatalf("call %d: %d %v", i, st, m)
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			post(t, u, "TOK", body)
			_ = s.Requests()
		}()
	}
	wg.Wait()
	if n := len(s.Requests()); n != 11 {
		t.Errorf("recorded %d", n)
	}
}

func TestMessengerWindow(t *testing.T) {
	s, srv := newSim(t, Options{})
	u := srv.URL + "/v21.0/me/messages"
	s.TouchInbound("U", time.Now().Add(-3*24*time.Hour))
	st, m := post(t, u, "PTOK", `{"recipient":{"id":"U"},"messaging_type":"RESPONSE","message":{"text":"x"}}`)
	if st != 400 || errCode(m) != 10 {
		t.Fatalf("%d %v", st, m)
	}
	st, m = post(t, u, "PTOK", `{"recipient":{"id":"U"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT","message":{"text":"x"}}`)
	if st != 200 || m["message_id"] == nil || m["recipient_id"] != "U" {
		t.Fatalf("%d %v", st, m)
	}
	st, _ = post(t, u, "PTOK", `{"recipient":{"id":"U"},"message":{"text":"x"}}`)
	if st != 400 {
		t.Errorf("messaging_type is required: %d", st)
	}
	st, _ = post(t, u, "TOK", `{"recipient":{"id":"U"},"messaging_type":"RESPONSE","message":{"text":"x"}}`)
	if st != 401 {
		t.Errorf("a WhatsApp token is not a page token: %d", st)
	}
	// access_token as a query parameter works too
	st, _ = post(t, u+"?access_token=PTOK", "", `{"recipient":{"id":"V"},"messaging_type":"RESPONSE","message":{"text":"x"}}`)
	if st != 200 {
		t.Errorf("query token: %d", st)
	}
}

func TestMediaNeedsBearerTwice(t *testing.T) {
	s, srv := newSim(t, Options{})
	id := s.AddMedia([]byte("OggS..."), "audio/ogg")
	get := func(url, tok string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, _ := get(srv.URL+"/v21.0/"+id, ""); resp.StatusCode != 401 {
		t.Errorf("metadata without token: %d", resp.StatusCode)
	}
	resp, b := get(srv.URL+"/v21.0/"+id, "TOK")
	var raw map[string]any
	_ = json.Unmarshal(b, &raw)
	dl, _ := raw["url"].(string)
	if resp.StatusCode != 200 || dl == "" || raw["mime_type"] != "audio/ogg" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if resp, _ := get(dl, ""); resp.StatusCode != 401 {
		t.Errorf("download without token: %d", resp.StatusCode)
	}
	if resp, b := get(dl, "TOK"); resp.StatusCode != 200 || string(b) != "OggS..." {
		t.Errorf("download: %d %q", resp.StatusCode, b)
	}
}

func TestDeliver(t *testing.T) {
	body := WhatsAppPayload(WAEntry{WABAID: "1", Values: []WAValue{{PhoneNumberID: "PN", Messages: []M{WAText("1", "wamid.X", 1, "hé")}}}})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if meta.VerifySignature("sec", r.Header.Get("X-Hub-Signature-256"), b) != nil || !strings.HasPrefix(r.Header.Get("X-Hub-Signature"), "sha1=") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if hits.Add(1) < 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	d := Deliverer{MaxAttempts: 5, Backoff: time.Millisecond}
	n, err := d.Deliver(context.Background(), srv.URL, "sec", body)
	if err != nil || n != 3 {
		t.Fatalf("%d %v", n, err)
	}
	hits.Store(-100) // always failing now: bounded attempts
	d.MaxAttempts = 2
	n, err = d.Deliver(context.Background(), srv.URL, "sec", body)
	if err == nil || n != 2 {
		t.Fatalf("%d %v", n, err)
	}
	// wrong secret never succeeds
	n, err = d.Deliver(context.Background(), srv.URL, "other", body)
	if err == nil || n != 2 {
		t.Fatalf("%d %v", n, err)
	}
}

func BenchmarkEncodeWhatsApp(b *testing.B) {
	v := WAValue{PhoneNumberID: "PN", Contacts: []WAContact{{WaID: "1", Name: "Zoë"}}, Messages: []M{WAText("1", "wamid.X", 1, "Привет 👋 https://a/b")}}
	for b.Loop() {
		_ = WhatsAppPayload(WAEntry{WABAID: "1", Values: []WAValue{v}})
	}
}

func TestSentIDsRecorded(t *testing.T) {
	s, srv := newSim(t, Options{})
	s.FailNext(1)
	u := srv.URL + "/v21.0/PN/messages"
	body := `{"messaging_product":"whatsapp","to":"155","type":"text","text":{"body":"hi"}}`
	post(t, u, "TOK", body)
	_, m := post(t, u, "TOK", body)
	ids := s.SentIDs()
	want := m["messages"].([]any)[0].(map[string]any)["id"]
	if len(ids) != 1 || ids[0] != want {
		t.Fatalf("%v want %v", ids, want)
	}
	if r := s.Requests(); r[0].Status != 500 || r[1].Status != 200 || len(r[1].Response) == 0 {
		t.Errorf("%+v", r)
	}
}
