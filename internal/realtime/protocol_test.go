package realtime

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestBearerFromProtocols(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
		token   string
		ok      bool
	}{
		{"none", nil, "", false},
		{"only bearer", []string{"bearer.abc123"}, "abc123", true},
		{"with parley", []string{"parley.v1, bearer.tok_X-9"}, "tok_X-9", true},
		{"separate headers", []string{"parley.v1", "bearer.zzz"}, "zzz", true},
		{"empty token", []string{"bearer."}, "", false},
		{"other", []string{"chat, superchat"}, "", false},
		{"spaces", []string{"  bearer.t1  ,parley.v1"}, "t1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ws", nil)
			for _, h := range tc.headers {
				r.Header.Add("Sec-WebSocket-Protocol", h)
			}
			tok, ok := BearerFromProtocols(r)
			if tok != tc.token || ok != tc.ok {
				t.Fatalf("got %q %v, want %q %v", tok, ok, tc.token, tc.ok)
			}
		})
	}
}

func FuzzBearerFromProtocols(f *testing.F) {
	for _, s := range []string{"bearer.abc", "parley.v1, bearer.x", ",,,", "bearer.", " bearer.a b "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.Header.Set("Sec-WebSocket-Protocol", h)
		tok, ok := BearerFromProtocols(r)
		if ok != (tok != "") || strings.Contains(tok, ",") {
			t.Fatalf("%q → %q %v", h, tok, ok)
		}
		if ok && !strings.Contains(h, "bearer."+tok) {
			t.Fatalf("%q → token %q not in header", h, tok)
		}
	})
}

func TestOriginAllowed(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		allowed      []string
		want         bool
	}{
		{"", "app.example.com", nil, true},
		{"https://app.example.com", "app.example.com", nil, true},
		{"https://APP.example.com", "app.example.com", nil, true},
		{"https://evil.com", "app.example.com", nil, false},
		{"https://evil.com", "app.example.com", []string{"https://good.com"}, false},
		{"https://good.com", "app.example.com", []string{"https://good.com/"}, true},
		{"http://good.com", "app.example.com", []string{"https://good.com"}, false},
		{"https://a.good.com", "app.example.com", []string{"*.good.com"}, true},
		{"null", "app.example.com", nil, false},
		{"https://app.example.com:8443", "app.example.com", nil, false},
	} {
		r := httptest.NewRequest("GET", "http://"+tc.host+"/ws", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := originAllowed(r, tc.allowed); got != tc.want {
			t.Errorf("origin %q host %q allowed %v: got %v", tc.origin, tc.host, tc.allowed, got)
		}
	}
}

// The handshake selects parley.v1 when offered, else echoes the bearer
// protocol (a browser fails a handshake that selects none); cookie auth
// refuses a foreign Origin and accepts the same origin; bearer auth
// ignores the Origin.
func TestHandshake(t *testing.T) {
	e := newEnv(t, defaultOpts(), nil)
	dial := func(cookie bool, origin string, protos ...string) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		extra := url.Values{}
		if cookie {
			extra.Set("cookie", "1")
		}
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.Dial(ctx, e.wsURL(testWS, "u1", "agent", extra), &websocket.DialOptions{Subprotocols: protos, HTTPHeader: h})
		if c != nil {
			t.Cleanup(func() { _ = c.CloseNow() })
		}
		return c, resp, err
	}
	c, _, err := dial(false, "https://anywhere.example", "bearer.tok123")
	if err != nil || c.Subprotocol() != "bearer.tok123" {
		t.Fatalf("bearer only: %v %q", err, c.Subprotocol())
	}
	c, _, err = dial(false, "", "parley.v1", "bearer.tok123")
	if err != nil || c.Subprotocol() != Subprotocol {
		t.Fatalf("parley.v1: %v", err)
	}
	if _, resp, err := dial(true, "https://evil.example"); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin cookie: %v %v", err, resp)
	}
	if _, _, err := dial(true, e.srv.URL); err != nil {
		t.Fatalf("same-origin cookie: %v", err)
	}
	e.allowedOrigins = []string{"https://app.example"}
	if _, _, err := dial(true, "https://app.example"); err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
}

func TestParseClientFrame(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"type":"ping"}`, true},
		{`{"type":"typing","conversation_id":"c1","state":"on"}`, true},
		{`{"type":"typing","conversation_id":"c1","state":"maybe"}`, false},
		{`{"type":"typing","conversation_id":"","state":"on"}`, false},
		{`{"type":"typing","conversation_id":"a.b","state":"on"}`, false},
		{`{"type":"viewing","conversation_id":""}`, true},
		{`{"type":"viewing","conversation_id":"c1"}`, true},
		{`{"type":"presence","status":"away"}`, true},
		{`{"type":"presence","status":"offline"}`, false},
		{`{"type":"change"}`, false},
		{`not json`, false},
	} {
		_, err := parseClientFrame([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.in, err)
		}
	}
}

func FuzzParseClientFrame(f *testing.F) {
	for _, s := range []string{`{"type":"ping"}`, `{"type":"typing","conversation_id":"c1","state":"on"}`, `{"type":"viewing","conversation_id":""}`, `{"type":"presence","status":"busy"}`, `[]`, `{"type":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseClientFrame(b)
		if err != nil {
			return
		}
		switch fr.Type {
		case FramePing:
		case FrameTyping:
			if !validToken(fr.ConversationID) || (fr.State != "on" && fr.State != "off") {
				t.Fatalf("accepted %q", b)
			}
		case FrameViewing:
			if fr.ConversationID != "" && !validToken(fr.ConversationID) {
				t.Fatalf("accepted %q", b)
			}
		case FramePresence:
			if !validStatus(fr.Status) {
				t.Fatalf("accepted %q", b)
			}
		default:
			t.Fatalf("accepted type %q", fr.Type)
		}
	})
}

func TestSubjectMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, subject string
		want             bool
	}{
		{"parley.changes.ws1", "parley.changes.ws1", true},
		{"parley.changes.ws1", "parley.changes.ws2", false},
		{"parley.signals.*", "parley.signals.ws1", true},
		{"parley.signals.*", "parley.signals", false},
		{"parley.signals.*", "parley.signals.ws1.x", false},
		{"parley.>", "parley.signals.ws1", true},
		{"parley.>", "parley", false},
		{"parley.nodes", "parley.nodes", true},
	} {
		if got := subjectMatch(tc.pattern, tc.subject); got != tc.want {
			t.Errorf("%s ~ %s: %v", tc.pattern, tc.subject, got)
		}
	}
}

// The memory bus delivers in order per subscription, honours wildcards and
// unsubscribe, and never blocks the publisher (it drops when full).
func TestMemoryBus(t *testing.T) {
	b := NewMemoryBus(nil, 4)
	defer b.Close()
	got := make(chan string, 100)
	un, err := b.Subscribe("a.*", func(d []byte) { got <- string(d) })
	if err != nil {
		t.Fatal(err)
	}
	block := make(chan struct{})
	unSlow, _ := b.Subscribe("a.x", func([]byte) { <-block })
	for i := 0; i < 3; i++ {
		if err := b.Publish(context.Background(), "a.x", []byte{'0' + byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	_ = b.Publish(context.Background(), "b.x", []byte("no"))
	for i := 0; i < 3; i++ {
		if s := <-got; s != string(rune('0'+i)) {
			t.Fatalf("order: %q", s)
		}
	}
	for i := 0; i < 10; i++ { // the slow subscriber fills; publishing goes on
		_ = b.Publish(context.Background(), "a.x", []byte("y"))
	}
	if b.Dropped() == 0 {
		t.Fatal("expected drops for the blocked subscriber")
	}
	close(block)
	unSlow()
	un()
	_ = b.Publish(context.Background(), "a.x", []byte("after"))
	time.Sleep(20 * time.Millisecond)
	for len(got) > 0 {
		if s := <-got; s == "after" {
			t.Fatal("delivered after unsubscribe")
		}
	}
	_ = b.Close()
	if err := b.Publish(context.Background(), "a.x", nil); err != ErrBusClosed {
		t.Fatalf("closed publish: %v", err)
	}
}
