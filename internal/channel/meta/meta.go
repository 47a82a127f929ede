// Package meta holds what WhatsApp Cloud API, Messenger and Instagram
// Messaging share: X-Hub-Signature-256 verification, the hub.challenge
// handshake, a small Graph API client with error mapping, lenient number and
// time decoding, and the Messenger-style "messaging" webhook parser used by
// both Messenger and Instagram.
package meta

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// DefaultBaseURL is the Graph API base used when config.api_base_url is unset.
const DefaultBaseURL = "https://graph.facebook.com/v21.0"

// Secret names shared by the Meta kinds.
const (
	SecretAppSecret   = "app_secret"
	SecretVerifyToken = "verify_token"
)

// SignatureHeader is the header Meta signs webhooks with.
const SignatureHeader = "X-Hub-Signature-256"

// Sign returns the X-Hub-Signature-256 value of body under appSecret.
func Sign(appSecret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks header (the X-Hub-Signature-256 value) against the
// HMAC-SHA256 of the raw body with appSecret, in constant time. Any failure is
// an inbox Unauthorized error.
func VerifySignature(appSecret, header string, body []byte) error {
	if appSecret == "" {
		return inbox.Errorf(inbox.Unauthorized, "app secret is not configured")
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return inbox.Errorf(inbox.Unauthorized, "missing %s header", SignatureHeader)
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return inbox.Errorf(inbox.Unauthorized, "malformed %s header", SignatureHeader)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return inbox.Errorf(inbox.Unauthorized, "malformed %s header", SignatureHeader)
	}
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return inbox.Errorf(inbox.Unauthorized, "signature mismatch")
	}
	return nil
}

// Verify is channel.Adapter.Verify for every Meta kind.
func Verify(cfg channel.Config, req channel.Request) error {
	return VerifySignature(cfg.Secret(SecretAppSecret), req.Header.Get(SignatureHeader), req.Body)
}

// Handshake answers Meta's GET ?hub.mode=subscribe&hub.challenge=N&hub.verify_token=T:
// 200 with the challenge verbatim when the mode is subscribe and the token
// matches (constant time), 403 otherwise.
func Handshake(cfg channel.Config, req channel.Request) (int, string, bool) {
	q := req.Query
	if len(q) == 0 && req.URL != "" {
		if u, err := url.Parse(req.URL); err == nil {
			q = u.Query()
		}
	}
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	want := cfg.Secret(SecretVerifyToken)
	tok := get("hub.verify_token")
	if get("hub.mode") != "subscribe" || want == "" ||
		!hmac.Equal([]byte(tok), []byte(want)) {
		return http.StatusForbidden, "forbidden", true
	}
	return http.StatusOK, get("hub.challenge"), true
}

// Ack is the webhook answer for every Meta kind.
func Ack() (string, []byte) { return "text/plain; charset=utf-8", []byte("EVENT_RECEIVED") }

// Num decodes a JSON number or a string holding one (Meta mixes both).
type Num struct {
	Set   bool
	Value float64
	Text  string
}

// UnmarshalJSON accepts 12, 12.5, "12", "" and null.
func (n *Num) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil
	}
	s := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return nil //nolint:nilerr // lenient: a bad value is just absent
		}
		s = strings.TrimSpace(s)
	}
	if s == "" {
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		n.Text = s
		return nil
	}
	n.Set, n.Value, n.Text = true, f, s
	return nil
}

// Int64 returns the value as an integer (0 when unset).
func (n Num) Int64() int64 {
	if !n.Set || n.Value > math.MaxInt64 || n.Value < math.MinInt64 {
		return 0
	}
	if i, err := strconv.ParseInt(n.Text, 10, 64); err == nil {
		return i
	}
	return int64(n.Value)
}

// Str decodes a JSON string, or a number written as its decimal text.
type Str string

// UnmarshalJSON accepts "x", 12 and null.
func (s *Str) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil
	}
	if b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = Str(v)
		return nil
	}
	if b[0] == '-' || (b[0] >= '0' && b[0] <= '9') {
		*s = Str(b)
		return nil
	}
	return nil // objects, arrays, booleans: treated as absent
}

// Seconds converts a Unix-seconds value to UTC; values that look like
// milliseconds (> 1e11) are accepted too. Zero for unset or absurd values.
func Seconds(n Num) time.Time {
	v := n.Int64()
	if v <= 0 {
		return time.Time{}
	}
	if v > 1e11 {
		return time.UnixMilli(v).UTC()
	}
	return time.Unix(v, 0).UTC()
}

// Millis converts a Unix-milliseconds value to UTC; values that look like
// seconds (< 1e11) are accepted too. Zero for unset values.
func Millis(n Num) time.Time {
	v := n.Int64()
	if v <= 0 {
		return time.Time{}
	}
	if v < 1e11 {
		return time.Unix(v, 0).UTC()
	}
	if v > 1e15 { // microseconds or garbage
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
