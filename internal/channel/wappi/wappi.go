// Package wappi is the Wappi aggregator adapter (WhatsApp, Telegram and MAX
// personal accounts). One account api_token serves many profiles; a channel is
// one profile. Webhooks carry {"messages":[…]}, calls go to
// {base}{prefix}/sync/… with "Authorization: <token>" and ?profile_id=.
package wappi

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// Kind is the channel kind this adapter serves.
const Kind = "wappi"

// DefaultBaseURL is Wappi's API host.
const DefaultBaseURL = "https://wappi.pro"

// Networks.
const (
	NetWhatsApp = "whatsapp"
	NetTelegram = "telegram"
	NetMax      = "max"
)

// Adapter implements channel.Adapter for Wappi profiles, plus profile
// management (AuthorizationQR, ProfileStatus, SetWebhook).
type Adapter struct{}

var _ channel.Adapter = (*Adapter)(nil)
var _ channel.ChatDirectory = (*Adapter)(nil)

// New returns the Wappi adapter.
func New() *Adapter { return &Adapter{} }

// Kind returns "wappi".
func (a *Adapter) Kind() string { return Kind }

// Handshake: none.
func (a *Adapter) Handshake(cfg channel.Config, req channel.Request) (int, string, bool) {
	return 0, "", false
}

// Ack answers 200 with a small JSON body.
func (a *Adapter) Ack() (string, []byte) { return "application/json", []byte(`{"status":"ok"}`) }

func network(cfg channel.Config) string {
	switch n := strings.ToLower(cfg.String("network")); n {
	case NetTelegram, NetMax:
		return n
	}
	return NetWhatsApp
}

// prefix is the API path prefix of the channel's network (/api, /tapi, /maxapi;
// MAX configurable with config.max_prefix).
func prefix(cfg channel.Config) string {
	switch network(cfg) {
	case NetTelegram:
		return "/tapi"
	case NetMax:
		if p := cfg.String("max_prefix"); p != "" {
			return "/" + strings.Trim(p, "/")
		}
		return "/maxapi"
	}
	return "/api"
}

// Verify compares the Authorization header with webhook_auth in constant time.
// Wappi signs nothing: the secret it sends (set with webhook/url/set?auth=)
// is the only proof a webhook comes from it, so a channel without
// webhook_auth accepts nothing.
func (a *Adapter) Verify(cfg channel.Config, req channel.Request) error {
	want := cfg.Secrets["webhook_auth"]
	if want == "" {
		return inbox.Errorf(inbox.Unauthorized, "wappi channel has no webhook_auth configured")
	}
	got := req.Header.Get("Authorization")
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return inbox.Errorf(inbox.Unauthorized, "invalid wappi webhook authorization")
	}
	return nil
}

// Rules per network. Personal accounts have no reply window.
func (a *Adapter) Rules(cfg channel.Config) channel.Rules {
	r := channel.Rules{TextLenUnit: "chars", Media: true, VoiceMime: "audio/ogg; codecs=opus", MaxMediaSize: 16 << 20}
	switch network(cfg) {
	case NetTelegram:
		r.MaxTextLen = 4096
		r.MaxMediaSize = 50 << 20
	case NetMax:
		r.MaxTextLen = 4000
		r.VoiceMime = ""
	default:
		r.MaxTextLen = 65536
	}
	return r
}

var (
	profileRe = regexp.MustCompile(`^[A-Za-z0-9-]{4,64}$`)
	prefixRe  = regexp.MustCompile(`^/?[a-z]+$`)
)

// ValidateConfig checks profile_id, network, max_prefix and webhook_auth
// (required: without it Verify refuses every webhook). The api_token lives
// on the provider account.
func (a *Adapter) ValidateConfig(config map[string]any, secrets map[string]string) error {
	var v inbox.Validator
	str := func(k string) string { s, _ := config[k].(string); return s }
	v.Check(profileRe.MatchString(str("profile_id")), "profile_id", "is required: the Wappi profile id (like 0a1b2c3d-4e5f)")
	n := str("network")
	v.Check(n == "" || n == NetWhatsApp || n == NetTelegram || n == NetMax, "network", "must be whatsapp, telegram or max")
	if p := str("max_prefix"); p != "" {
		v.Check(prefixRe.MatchString(p), "max_prefix", "must be a path prefix like /maxapi")
	}
	if w := secrets["webhook_auth"]; strings.TrimSpace(w) == "" {
		v.Check(false, "webhook_auth", "is required: the secret Wappi sends in the Authorization header of its webhooks (set it on the profile with webhook/url/set?auth=)")
	} else {
		// HTTP trims a header value's outer spaces, so such a secret could never match.
		v.Check(len(w) <= 512 && !strings.ContainsAny(w, "\r\n") && w == strings.TrimSpace(w),
			"webhook_auth", "must be a single line of at most 512 characters, without leading or trailing spaces")
	}
	return v.Err()
}

// ---- lenient JSON scalars ----

// flexString accepts a JSON string, number or bool.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*f = ""
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	if b[0] == '{' || b[0] == '[' {
		*f = "" // objects where a scalar is expected are ignored
		return nil
	}
	*f = flexString(b)
	return nil
}

// flexBool accepts true, "false", "1", 0, "yes"...
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(string(s))) {
	case "true", "1", "yes", "y", "on":
		*f = true
	default:
		*f = false
	}
	return nil
}

// parseTime reads Unix seconds (ms when > 1e11), or RFC 3339.
func parseTime(unix flexString, rfc string) time.Time {
	if s := strings.TrimSpace(string(unix)); s != "" {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && !math.IsInf(f, 0) && f < 1e17 {
			if f > 1e11 {
				return time.UnixMilli(int64(f)).UTC()
			}
			return time.Unix(int64(f), 0).UTC()
		}
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t.UTC()
		}
	}
	if rfc != "" {
		if t, err := time.Parse(time.RFC3339, rfc); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
