package meta

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

func TestValidateConfig(t *testing.T) {
	full := map[string]string{"page_access_token": "t", "app_secret": "a", "verify_token": "v"}
	tests := []struct {
		name    string
		config  map[string]any
		secrets map[string]string
		want    map[string]string // field → message; nil: valid
	}{
		{"valid", map[string]any{"page_id": "1"}, full, nil},
		{"valid with base", map[string]any{"page_id": "1", "api_base_url": "https://x"}, full, nil},
		{"empty base is fine", map[string]any{"page_id": "1", "api_base_url": ""}, full, nil},
		{"blank id", map[string]any{"page_id": "  "}, full, map[string]string{"config.page_id": "required"}},
		{"id not a string", map[string]any{"page_id": 7}, full, map[string]string{"config.page_id": "required"}},
		{"bad base", map[string]any{"page_id": "1", "api_base_url": "ftp://x"}, full,
			map[string]string{"config.api_base_url": "must be an http(s) URL"}},
		// A non-string base reads as "" and passes, as each adapter did before.
		{"base not a string", map[string]any{"page_id": "1", "api_base_url": 3}, full, nil},
		{"nothing", nil, nil, map[string]string{"config.page_id": "required", "secrets.page_access_token": "required",
			"secrets.app_secret": "required", "secrets.verify_token": "required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v inbox.Validator
			ValidateConfig(&v, tc.config, tc.secrets, "page_id", "page_access_token")
			err := v.Err()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var ie *inbox.Error
			if !errors.As(err, &ie) || ie.Code != inbox.Invalid || !maps.Equal(ie.Fields, tc.want) {
				t.Fatalf("err = %#v, want fields %v", err, tc.want)
			}
		})
	}
}

func TestCommon(t *testing.T) {
	var c Common
	cfg := channel.Config{Secrets: map[string]string{SecretAppSecret: "s", SecretVerifyToken: "tok"}}
	body := []byte(`{"object":"page"}`)
	h := http.Header{}
	h.Set(SignatureHeader, Sign("s", body))
	if err := c.Verify(cfg, channel.Request{Header: h, Body: body}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := c.Verify(cfg, channel.Request{Header: h, Body: []byte("x")}); !inbox.IsCode(err, inbox.Unauthorized) {
		t.Fatalf("Verify tampered body: %v", err)
	}
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"tok"}, "hub.challenge": {"42"}}
	if st, out, ok := c.Handshake(cfg, channel.Request{Query: q}); st != http.StatusOK || out != "42" || !ok {
		t.Fatalf("Handshake = %d %q %v", st, out, ok)
	}
	if ct, b := c.Ack(); ct != "text/plain; charset=utf-8" || string(b) != "EVENT_RECEIVED" {
		t.Fatalf("Ack = %q %q", ct, b)
	}
}

func TestPartialSend(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&channel.SendError{Code: "rate_limited", Reason: "too many calls"}, "partially sent: too many calls"},
		{errors.New("connection reset"), "partially sent: connection reset"},
	}
	for _, tc := range tests {
		se := PartialSend(tc.err)
		if se.Code != "partial" || se.Reason != tc.want || se.Retryable {
			t.Errorf("PartialSend(%v) = %+v, want code partial, reason %q, not retryable", tc.err, se, tc.want)
		}
	}
}
