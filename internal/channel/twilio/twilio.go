// Package twilio is the Twilio Programmable Messaging (SMS/MMS) adapter:
// form-encoded webhooks signed with X-Twilio-Signature, REST sends.
package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// Kind is the channel kind this adapter serves.
const Kind = "twilio_sms"

// DefaultBaseURL is Twilio's REST host.
const DefaultBaseURL = "https://api.twilio.com"

// Limits.
const (
	MaxBodyLen    = 1600
	MaxMediaURLs  = 10
	MaxMediaTotal = 5 << 20 // all the files of one MMS together
)

// SignatureHeader carries the webhook signature.
const SignatureHeader = "X-Twilio-Signature"

// Adapter implements channel.Adapter for Twilio SMS/MMS.
type Adapter struct{}

var _ channel.Adapter = (*Adapter)(nil)

// New returns the Twilio adapter.
func New() *Adapter { return &Adapter{} }

// Kind returns "twilio_sms".
func (a *Adapter) Kind() string { return Kind }

// Handshake: none.
func (a *Adapter) Handshake(cfg channel.Config, req channel.Request) (int, string, bool) {
	return 0, "", false
}

// Ack is empty TwiML: no automatic reply.
func (a *Adapter) Ack() (string, []byte) {
	return "text/xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><Response></Response>`)
}

// mms reports config.mms (bool or "true"/"1"); default false (SMS only).
func mms(cfg channel.Config) bool {
	v, ok := cfg.Config["mms"]
	if !ok {
		v = cfg.AccountConfig["mms"]
	}
	switch x := v.(type) {
	case bool:
		return x
	case string:
		b, _ := strconv.ParseBool(x)
		return b
	case float64:
		return x != 0
	}
	return false
}

// Rules: 1600 chars per message (Twilio splits into segments itself), media only when mms is on.
func (a *Adapter) Rules(cfg channel.Config) channel.Rules {
	r := channel.Rules{MaxTextLen: MaxBodyLen, TextLenUnit: "chars", Segments: func(text string) (string, int) {
		enc, n, _ := Segments(text)
		return enc, n
	}}
	if mms(cfg) {
		// MediaUrl: at most 10 files, 5 MB together (providers.md §5).
		r.Media = true
		r.MaxMediaSize = MaxMediaTotal
		r.MaxMediaTotal = MaxMediaTotal
		r.MaxAttachments = MaxMediaURLs
	}
	return r
}

var (
	sidRe   = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	e164Re  = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	msvcRe  = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	shortRe = regexp.MustCompile(`^[0-9]{3,8}$`)
)

// ValidateConfig checks account_sid, phone_number (E.164 or a short code) or
// messaging_service_sid, auth_token and mms.
func (a *Adapter) ValidateConfig(config map[string]any, secrets map[string]string) error {
	var v inbox.Validator
	str := func(k string) string { s, _ := config[k].(string); return s }
	v.Check(sidRe.MatchString(str("account_sid")), "account_sid", "must be your Account SID: AC followed by 32 hex digits")
	phone, svc := str("phone_number"), str("messaging_service_sid")
	v.Check(phone != "" || svc != "", "phone_number", "is required (E.164, e.g. +15550100001)")
	if phone != "" {
		v.Check(e164Re.MatchString(phone) || shortRe.MatchString(phone), "phone_number", "must be E.164 with a leading + (e.g. +15550100001) or a short code")
	}
	if svc != "" {
		v.Check(msvcRe.MatchString(svc), "messaging_service_sid", "must be MG followed by 32 hex digits")
	}
	v.Check(strings.TrimSpace(secrets["auth_token"]) != "", "auth_token", "is required")
	if m, ok := config["mms"]; ok && m != nil {
		_, isBool := m.(bool)
		v.Check(isBool, "mms", "must be true or false")
	}
	return v.Err()
}

// Sign computes X-Twilio-Signature for url and POST params: base64(HMAC-SHA1(token, url + sorted name+value)).
func Sign(authToken, url string, params map[string][]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(url))
	for _, k := range keys {
		vals := append([]string(nil), params[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			mac.Write([]byte(k))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// urlVariants returns url as given, plus the form with the default port added
// or removed (":443" for https, ":80" for http), as Twilio's SDKs accept both.
func urlVariants(u string) []string {
	out := []string{u}
	schemeEnd := strings.Index(u, "://")
	if schemeEnd < 0 {
		return out
	}
	scheme := strings.ToLower(u[:schemeEnd])
	def := map[string]string{"https": "443", "http": "80"}[scheme]
	if def == "" {
		return out
	}
	rest := u[schemeEnd+3:]
	hostEnd := strings.IndexAny(rest, "/?#")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	host, tail := rest[:hostEnd], rest[hostEnd:]
	userinfo := ""
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		userinfo, host = host[:at+1], host[at+1:]
	}
	prefix := u[:schemeEnd+3] + userinfo
	if h, ok := strings.CutSuffix(host, ":"+def); ok {
		out = append(out, prefix+h+tail)
	} else if !hasPort(host) {
		out = append(out, prefix+host+":"+def+tail)
	}
	return out
}

func hasPort(host string) bool {
	i := strings.LastIndexByte(host, ':')
	return i >= 0 && i > strings.LastIndexByte(host, ']')
}

// Verify checks X-Twilio-Signature over Request.URL (the public URL as
// configured, with query; cfg.WebhookURL when empty) and the decoded POST params.
func (a *Adapter) Verify(cfg channel.Config, req channel.Request) error {
	token := cfg.Secret("auth_token")
	sig := req.Header.Get(SignatureHeader)
	if token == "" || sig == "" {
		return inbox.Errorf(inbox.Unauthorized, "missing twilio signature or auth token")
	}
	u := req.URL
	if u == "" {
		u = cfg.WebhookURL
	}
	var params map[string][]string
	if !strings.EqualFold(req.Method, "GET") && len(req.Body) > 0 {
		p, err := parseForm(req.Body)
		if err != nil {
			return inbox.Errorf(inbox.Unauthorized, "twilio body is not form-encoded")
		}
		params = p
	}
	for _, variant := range urlVariants(u) {
		if hmac.Equal([]byte(Sign(token, variant, params)), []byte(sig)) {
			return nil
		}
	}
	return inbox.Errorf(inbox.Unauthorized, "invalid twilio signature")
}

// ErrorMeaning explains common Twilio messaging error codes.
func ErrorMeaning(code string) string {
	switch code {
	case "30001":
		return "Queue overflow"
	case "30002":
		return "Account suspended"
	case "30003":
		return "Unreachable destination handset"
	case "30004":
		return "Message blocked (the recipient may have opted out or blocked the number)"
	case "30005":
		return "Unknown destination handset"
	case "30006":
		return "Landline or unreachable carrier"
	case "30007":
		return "Message filtered by the carrier"
	case "30008":
		return "Unknown error"
	case "30009":
		return "Missing segment"
	case "30010":
		return "Message price exceeds max price"
	case "30019":
		return "Content size exceeds carrier limit"
	case "30032":
		return "Toll-free number has not been verified"
	case "30034":
		return "Message from an unregistered number (A2P 10DLC)"
	case "21211":
		return "Invalid 'To' phone number"
	case "21408":
		return "Permission to send to this region is not enabled"
	case "21610":
		return "The recipient replied STOP (unsubscribed)"
	case "21612":
		return "The 'To' number cannot be reached with this 'From' number"
	case "21614":
		return "'To' is not a valid mobile number"
	case "21617":
		return "Message body exceeds the 1600 character limit"
	case "21660":
		return "'From' number does not belong to this account"
	case "11200":
		return "HTTP retrieval failure"
	}
	return ""
}

func jsonOf(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
