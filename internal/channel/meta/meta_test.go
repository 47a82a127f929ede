package meta

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// A body exactly as Meta sends it: escaped unicode and slashes. Re-serializing
// it would change the bytes and break the signature.
const escapedBody = `{"object":"page","entry":[{"id":"PAGE","time":1700000000123,"messaging":[{"sender":{"id":"PSID"},"recipient":{"id":"PAGE"},"timestamp":1700000000000,"message":{"mid":"m_1","text":"caf\u00e9 \ud83d\ude00 http:\/\/x"}}]}]}`

func TestVerifySignature(t *testing.T) {
	body := []byte(escapedBody)
	good := Sign("app-secret", body)
	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		ok     bool
	}{
		{"valid", "app-secret", good, body, true},
		{"valid uppercase hex", "app-secret", "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), body, true},
		{"tampered body", "app-secret", good, []byte(strings.Replace(escapedBody, "caf", "cab", 1)), false},
		{"re-serialized body", "app-secret", good, reserialize(t, body), false},
		{"wrong secret", "other", good, body, false},
		{"missing header", "app-secret", "", body, false},
		{"no prefix", "app-secret", strings.TrimPrefix(good, "sha256="), body, false},
		{"sha1 legacy only", "app-secret", "sha1=0123456789abcdef0123456789abcdef01234567", body, false},
		{"not hex", "app-secret", "sha256=zz", body, false},
		{"truncated", "app-secret", good[:len(good)-2], body, false},
		{"no secret configured", "", good, body, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(tc.secret, tc.header, tc.body)
			if tc.ok && err != nil {
				t.Fatalf("want ok, got %v", err)
			}
			if !tc.ok && !inbox.IsCode(err, inbox.Unauthorized) {
				t.Fatalf("want unauthorized, got %v", err)
			}
		})
	}
	// through the channel.Request shape, header name case-insensitive
	h := http.Header{}
	h.Set("x-hub-signature-256", good)
	cfg := channel.Config{Secrets: map[string]string{"app_secret": "app-secret"}}
	if err := Verify(cfg, channel.Request{Header: h, Body: body}); err != nil {
		t.Error(err)
	}
	cfg = channel.Config{AccountSecrets: map[string]string{"app_secret": "app-secret"}}
	if err := Verify(cfg, channel.Request{Header: h, Body: body}); err != nil {
		t.Errorf("account-level secret: %v", err)
	}
}

func reserialize(t *testing.T, b []byte) []byte {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	return out
}

func TestHandshake(t *testing.T) {
	cfg := channel.Config{Secrets: map[string]string{"verify_token": "tok-123"}}
	q := func(mode, challenge, tok string) map[string][]string {
		m := map[string][]string{}
		if mode != "" {
			m["hub.mode"] = []string{mode}
		}
		if challenge != "" {
			m["hub.challenge"] = []string{challenge}
		}
		if tok != "" {
			m["hub.verify_token"] = []string{tok}
		}
		return m
	}
	tests := []struct {
		name   string
		cfg    channel.Config
		query  map[string][]string
		status int
		body   string
	}{
		{"ok", cfg, q("subscribe", "1158201444", "tok-123"), 200, "1158201444"},
		{"challenge verbatim", cfg, q("subscribe", "abc def<>", "tok-123"), 200, "abc def<>"},
		{"wrong token", cfg, q("subscribe", "1", "nope"), 403, ""},
		{"wrong mode", cfg, q("unsubscribe", "1", "tok-123"), 403, ""},
		{"no token", cfg, q("subscribe", "1", ""), 403, ""},
		{"no verify token configured", channel.Config{}, q("subscribe", "1", ""), 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body, ok := Handshake(tc.cfg, channel.Request{Method: "GET", Query: tc.query})
			if !ok || st != tc.status || (tc.status == 200 && body != tc.body) {
				t.Fatalf("got %d %q %v", st, body, ok)
			}
		})
	}
}

func TestErrorFromResponse(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		code      string
		retryable bool
		reason    string
	}{
		{"re-engagement", 400, `{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"fbtrace_id":"AbC"}}`, "131047", false, "more than 24 hours"},
		{"invalid token", 401, `{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"x"}}`, "190", false, "Invalid OAuth"},
		{"transient 500", 500, `{"error":{"message":"An unexpected error has occurred. Please retry your request later.","type":"OAuthException","is_transient":true,"code":2,"fbtrace_id":"x"}}`, "2", true, "unexpected"},
		{"throughput", 400, `{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"error_data":{"messaging_product":"whatsapp","details":"Cloud API message throughput has been reached."}}}`, "130429", true, "throughput"},
		{"messenger window", 400, `{"error":{"message":"(#10) This message is sent outside of allowed window.","type":"OAuthException","code":10,"error_subcode":2018278,"fbtrace_id":"x"}}`, "10/2018278", false, "outside of allowed window"},
		{"page rate limit", 400, `{"error":{"message":"(#32) Page request limit reached","code":32}}`, "32", true, "limit"},
		{"code as string", 400, `{"error":{"message":"bad","code":"100"}}`, "100", false, "bad"},
		{"html gateway error", 502, `<html>Bad Gateway</html>`, "502", true, "Bad Gateway"},
		{"429 empty", 429, ``, "429", true, "Too Many Requests"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.status == 429 {
				h.Set("Retry-After", "7")
			}
			se := ErrorFromResponse(tc.status, h, []byte(tc.body))
			if se.Code != tc.code || se.Retryable != tc.retryable || !strings.Contains(se.Reason, tc.reason) || se.HTTPStatus != tc.status {
				t.Fatalf("got %+v", se)
			}
			if tc.status == 429 && se.RetryAfter != 7*time.Second {
				t.Errorf("retry after %v", se.RetryAfter)
			}
		})
	}
}

func TestNumAndTimes(t *testing.T) {
	var v struct {
		A, B, C, D, E Num
	}
	if err := json.Unmarshal([]byte(`{"A":"1739321024","B":1700000000123,"C":"","D":null,"E":"x"}`), &v); err != nil {
		t.Fatal(err)
	}
	if !Seconds(v.A).Equal(time.Unix(1739321024, 0)) || !Millis(v.B).Equal(time.UnixMilli(1700000000123)) {
		t.Errorf("%v %v", Seconds(v.A), Millis(v.B))
	}
	if !Seconds(v.C).IsZero() || !Seconds(v.D).IsZero() || !Seconds(v.E).IsZero() || v.E.Set {
		t.Error("empty values must be zero")
	}
	// lenient: seconds in a millisecond field and vice versa
	if !Millis(Num{Set: true, Value: 1700000000, Text: "1700000000"}).Equal(time.Unix(1700000000, 0)) {
		t.Error("millis given seconds")
	}
	if !Seconds(Num{Set: true, Value: 1700000000123, Text: "1700000000123"}).Equal(time.UnixMilli(1700000000123)) {
		t.Error("seconds given millis")
	}
	var s struct{ A, B, C Str }
	if err := json.Unmarshal([]byte(`{"A":"x","B":123456789012345678,"C":{"z":1}}`), &s); err != nil || s.A != "x" || s.B != "123456789012345678" || s.C != "" {
		t.Errorf("%+v %v", s, err)
	}
}

func TestHandshakeFromURL(t *testing.T) {
	cfg := channel.Config{Secrets: map[string]string{"verify_token": "vt"}}
	st, body, _ := Handshake(cfg, channel.Request{URL: "https://parley.example/webhooks/c1?hub.mode=subscribe&hub.challenge=42&hub.verify_token=vt"})
	if st != 200 || body != "42" {
		t.Fatalf("%d %q", st, body)
	}
}
