// Package apichannel is the generic "api" channel: any system posts signed
// JSON messages to the channel webhook and receives outgoing messages as
// signed JSON POSTs on its callback_url.
package apichannel

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// Kind is the channel kind this adapter serves.
const Kind = "api"

// SignatureHeader carries "sha256=<hex HMAC-SHA256(raw body, hmac_secret)>" both ways.
const SignatureHeader = "X-Parley-Signature"

// Adapter implements channel.Adapter for the generic API channel.
type Adapter struct{}

var _ channel.Adapter = (*Adapter)(nil)

// New returns the api adapter.
func New() *Adapter { return &Adapter{} }

// Kind returns "api".
func (a *Adapter) Kind() string { return Kind }

// Sign returns the X-Parley-Signature value for body.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks X-Parley-Signature over the raw body in constant time.
func (a *Adapter) Verify(cfg channel.Config, req channel.Request) error {
	secret := cfg.Secret("hmac_secret")
	got := strings.TrimSpace(req.Header.Get(SignatureHeader))
	if secret == "" || got == "" {
		return inbox.Errorf(inbox.Unauthorized, "missing X-Parley-Signature or hmac_secret")
	}
	hexPart, ok := strings.CutPrefix(got, "sha256=")
	if !ok {
		return inbox.Errorf(inbox.Unauthorized, "X-Parley-Signature must be sha256=<hex>")
	}
	want := Sign(secret, req.Body)[len("sha256="):]
	if !hmac.Equal([]byte(strings.ToLower(hexPart)), []byte(want)) {
		return inbox.Errorf(inbox.Unauthorized, "invalid X-Parley-Signature")
	}
	return nil
}

// Handshake: none.
func (a *Adapter) Handshake(cfg channel.Config, req channel.Request) (int, string, bool) {
	return 0, "", false
}

// Ack answers {"status":"ok"}.
func (a *Adapter) Ack() (string, []byte) { return "application/json", []byte(`{"status":"ok"}`) }

// Rules: no limits of its own.
func (a *Adapter) Rules(cfg channel.Config) channel.Rules {
	return channel.Rules{Media: true, TextLenUnit: "chars"}
}

// ValidateConfig checks callback_url (absolute http(s)) and hmac_secret.
func (a *Adapter) ValidateConfig(config map[string]any, secrets map[string]string) error {
	var v inbox.Validator
	cb, _ := config["callback_url"].(string)
	u, err := url.Parse(cb)
	v.Check(cb == "" || (err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""), "callback_url", "must be an absolute http(s) URL")
	v.Check(strings.TrimSpace(secrets["hmac_secret"]) != "", "hmac_secret", "is required")
	return v.Err()
}

type inContact struct {
	Identifier string `json:"identifier"`
	Name       string `json:"name"`
	Email      string `json:"email"`
	Phone      string `json:"phone"`
	AvatarURL  string `json:"avatar_url"`
}

type inAttachment struct {
	URL      string `json:"url"`
	MimeType string `json:"mime_type"`
	Filename string `json:"filename"`
}

type inMessage struct {
	ExternalID  string          `json:"external_id"`
	Contact     inContact       `json:"contact"`
	Text        string          `json:"text"`
	Attachments []inAttachment  `json:"attachments"`
	Timestamp   json.RawMessage `json:"timestamp"`
	ReplyTo     string          `json:"reply_to"`
}

func parseTimestamp(raw json.RawMessage) (time.Time, bool) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" {
		return time.Time{}, true
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f < 1e13 {
		if f > 1e11 {
			return time.UnixMilli(int64(f)).UTC(), true
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), true
	}
	return time.Time{}, false
}

func kindOf(mime string) string {
	switch {
	case strings.HasPrefix(mime, "image/"):
		return inbox.KindImage
	case strings.HasPrefix(mime, "video/"):
		return inbox.KindVideo
	case strings.HasPrefix(mime, "audio/"):
		return inbox.KindAudio
	}
	return inbox.KindDocument
}

// Parse reads one message (or a JSON array of them). The contact identifier
// falls back to email, then phone; a message without external_id is keyed by
// the SHA-256 of its raw JSON so a replay stays a no-op.
func (a *Adapter) Parse(cfg channel.Config, req channel.Request) ([]channel.Event, error) {
	body := bytes.TrimSpace(req.Body)
	var items []json.RawMessage
	if len(body) > 0 && body[0] == '[' {
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, inbox.Wrap(inbox.Invalid, err, "body is not valid JSON")
		}
	} else {
		if !json.Valid(body) {
			return nil, inbox.Errorf(inbox.Invalid, "body is not valid JSON")
		}
		items = []json.RawMessage{body}
	}
	out := make([]channel.Event, 0, len(items))
	for _, raw := range items {
		var m inMessage
		err := json.Unmarshal(raw, &m)
		ident := strings.TrimSpace(m.Contact.Identifier)
		if ident == "" {
			ident = strings.TrimSpace(m.Contact.Email)
		}
		if ident == "" {
			ident = strings.TrimSpace(m.Contact.Phone)
		}
		ts, tsOK := parseTimestamp(m.Timestamp)
		if err != nil || ident == "" || !tsOK {
			return nil, inbox.FieldError("invalid api message", map[string]string{
				"contact.identifier": "a contact identifier (or email or phone) is required; timestamp must be RFC 3339 or unix seconds",
			})
		}
		ext := m.ExternalID
		if ext == "" {
			sum := sha256.Sum256(raw)
			ext = "sha256:" + hex.EncodeToString(sum[:])
		}
		ev := channel.Event{
			Type:       channel.EventMessage,
			ExternalID: ext,
			ChatID:     ident,
			Sender:     channel.Party{Identifier: ident, Name: m.Contact.Name, Email: m.Contact.Email, Phone: m.Contact.Phone, AvatarURL: m.Contact.AvatarURL},
			Direction:  "inbound",
			Kind:       inbox.KindText,
			Text:       m.Text,
			ReplyToID:  m.ReplyTo,
			Timestamp:  ts,
			Raw:        raw,
		}
		for _, at := range m.Attachments {
			if at.URL == "" {
				continue
			}
			ev.Attachments = append(ev.Attachments, channel.Media{Kind: kindOf(at.MimeType), MimeType: at.MimeType, Filename: at.Filename, ProviderRef: at.URL})
		}
		if len(ev.Attachments) > 0 {
			ev.Kind = ev.Attachments[0].Kind
		}
		if ev.Text == "" && len(ev.Attachments) == 0 {
			ev.Kind = inbox.KindUnsupported
			ev.Content = raw
		}
		out = append(out, ev)
	}
	return out, nil
}

type outAttachment struct {
	URL      string `json:"url"`
	MimeType string `json:"mime_type"`
	Filename string `json:"filename"`
}

type outReaction struct {
	TargetID string `json:"target_id"`
	Emoji    string `json:"emoji"`
}

type outBody struct {
	MessageID      string          `json:"message_id"`
	ConversationID string          `json:"conversation_id,omitempty"`
	To             string          `json:"to"`
	Text           string          `json:"text"`
	Attachments    []outAttachment `json:"attachments"`
	ReplyTo        string          `json:"reply_to,omitempty"`
	Reaction       *outReaction    `json:"reaction,omitempty"`
}

// Send POSTs the message as signed JSON to callback_url. The answer may carry
// {"external_id"}; without it the message id is the external id.
func (a *Adapter) Send(ctx context.Context, cfg channel.Config, out channel.Outgoing) (channel.SendResult, error) {
	cb := cfg.String("callback_url")
	secret := cfg.Secret("hmac_secret")
	if cb == "" || secret == "" {
		return channel.SendResult{}, &channel.SendError{Code: "config", Reason: "api channel has no callback_url or hmac_secret"}
	}
	b := outBody{MessageID: out.MessageID, To: out.To, Text: out.Text, ReplyTo: out.ReplyToID, Attachments: []outAttachment{}}
	if out.ChatID != "" && out.ChatID != out.To {
		b.ConversationID = out.ChatID
	}
	for _, m := range out.Attachments {
		b.Attachments = append(b.Attachments, outAttachment{URL: m.URL, MimeType: m.MimeType, Filename: m.Filename})
	}
	if out.Reaction != nil {
		b.Reaction = &outReaction{TargetID: out.Reaction.TargetID, Emoji: out.Reaction.Emoji}
	}
	payload, err := json.Marshal(b)
	if err != nil {
		return channel.SendResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cb, bytes.NewReader(payload))
	if err != nil {
		return channel.SendResult{}, &channel.SendError{Code: "config", Reason: "invalid callback_url"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(secret, payload))
	if out.MessageID != "" {
		req.Header.Set("Idempotency-Key", out.MessageID)
	}
	resp, err := cfg.Client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return channel.SendResult{}, &channel.SendError{Retryable: true, Code: "network", Reason: err.Error()}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		se := &channel.SendError{HTTPStatus: resp.StatusCode, Code: strconv.Itoa(resp.StatusCode),
			Reason: fmt.Sprintf("callback answered HTTP %d", resp.StatusCode)}
		var e struct {
			Error any `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != nil {
			se.Reason += fmt.Sprintf(": %v", e.Error)
		}
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			se.Retryable = true
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				se.RetryAfter = time.Duration(s) * time.Second
			}
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
			se.Retryable = true
		}
		return channel.SendResult{}, se
	}
	var r struct {
		ExternalID string `json:"external_id"`
	}
	_ = json.Unmarshal(data, &r)
	id := r.ExternalID
	if id == "" {
		id = out.MessageID
	}
	res := channel.SendResult{ExternalID: id, Status: inbox.MsgSent}
	if id != "" {
		res.ExternalIDs = []string{id}
	}
	return res, nil
}

// FetchMedia downloads an attachment URL given in an inbound message.
func (a *Adapter) FetchMedia(ctx context.Context, cfg channel.Config, ref string) (io.ReadCloser, string, error) {
	u, err := url.Parse(ref)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", inbox.Errorf(inbox.Invalid, "attachment reference is not an http(s) URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := cfg.Client().Do(req)
	if err != nil {
		return nil, "", &channel.SendError{Retryable: true, Code: "network", Reason: err.Error()}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, "", &channel.SendError{Code: strconv.Itoa(resp.StatusCode), HTTPStatus: resp.StatusCode, Retryable: resp.StatusCode >= 500,
			Reason: fmt.Sprintf("attachment download answered HTTP %d", resp.StatusCode)}
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	return resp.Body, ct, nil
}
