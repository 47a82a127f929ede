package wappisim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/parleyhq/parley/internal/providersim/webhook"
)

// Thumbnail is the kind of base64 blob Wappi puts in the body of media messages.
const Thumbnail = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAAKAAoDASIA"

// Msg describes one webhook element.
type Msg struct {
	ProfileID  string
	Network    string // whatsapp (default) | telegram | max
	ID         string
	Type       string // chat|image|video|document|ptt|audio|location|vcard|reaction|poll|text...
	Body       string
	From       string // WhatsApp "15550009999@c.us"
	To         string
	ChatID     string // WhatsApp group "1203630…@g.us"
	SenderName string
	ChatType   string // telegram/max: user|chat
	IsGroup    *bool
	StanzaID   string // quoted / reacted message id
	IsReply    bool
	IsEdited   bool
	FileLink   string
	MimeType   string
	FileName   string
	Caption    string
	Time       time.Time
	Extra      map[string]any
}

// Object returns the element as a map with the given wh_type.
func (m Msg) Object(whType string) map[string]any {
	t := m.Time
	if t.IsZero() {
		t = time.Unix(1700000000, 0)
	}
	typ := m.Type
	if typ == "" {
		typ = "chat"
		if m.Network == "telegram" || m.Network == "max" {
			typ = "text"
		}
	}
	chat := m.ChatID
	if chat == "" {
		if whType == "incoming_message" {
			chat = m.From
		} else {
			chat = m.To
		}
	}
	o := map[string]any{
		"wh_type": whType, "profile_id": m.ProfileID, "id": m.ID, "type": typ, "body": m.Body,
		"from": m.From, "to": m.To, "chatId": chat, "senderName": m.SenderName, "contact_name": m.SenderName,
		"time": t.Unix(), "timestamp": t.UTC().Format(time.RFC3339), "is_me": whType != "incoming_message",
		"from_where": map[string]string{"incoming_message": "phone", "outgoing_message_api": "api", "outgoing_message_phone": "phone"}[whType],
		"isReply":    m.IsReply, "is_edited": m.IsEdited, "is_forwarded": false, "thumbnail": "", "picture": "",
	}
	if m.StanzaID != "" {
		o["stanza_id"] = m.StanzaID
	}
	if m.ChatType != "" {
		o["chat_type"] = m.ChatType
	}
	if m.IsGroup != nil {
		if m.Network == "max" {
			o["isGroup"] = fmt.Sprint(*m.IsGroup) // MAX sends it as a string
		} else {
			o["isGroup"] = *m.IsGroup
		}
	}
	if m.FileLink != "" {
		o["file_link"] = m.FileLink
	}
	if m.MimeType != "" {
		o["mimetype"] = m.MimeType
	}
	if m.FileName != "" {
		o["file_name"] = m.FileName
	}
	if m.Caption != "" {
		o["caption"] = m.Caption
	}
	for k, v := range m.Extra {
		o[k] = v
	}
	return o
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain maps are marshalled
	}
	return b
}

// Envelope wraps elements as {"messages":[…]}.
func Envelope(elems ...map[string]any) []byte {
	list := make([]any, len(elems))
	for i, e := range elems {
		list[i] = e
	}
	return mustJSON(map[string]any{"messages": list})
}

// Incoming is an incoming_message webhook.
func Incoming(m Msg) []byte { return Envelope(m.Object("incoming_message")) }

// EchoAPI is an outgoing_message_api webhook (our API send, echoed).
func EchoAPI(m Msg) []byte { return Envelope(m.Object("outgoing_message_api")) }

// EchoPhone is an outgoing_message_phone webhook (typed on the phone).
func EchoPhone(m Msg) []byte { return Envelope(m.Object("outgoing_message_phone")) }

// DeliveryStatus is a delivery_status webhook; messages is a single object, as Wappi sends it.
func DeliveryStatus(profileID, messageID, chatID, status string) []byte {
	return mustJSON(map[string]any{"messages": map[string]any{"wh_type": "delivery_status", "profile_id": profileID,
		"id": messageID, "chat_id": chatID, "status": status, "time": time.Now().Unix()}})
}

// AuthorizationStatus is an authorization_status webhook.
func AuthorizationStatus(profileID, status string) []byte {
	return Envelope(map[string]any{"wh_type": "authorization_status", "profile_id": profileID, "status": status,
		"time": time.Now().Unix()})
}

// IncomingCall is an incoming_call webhook (single object).
func IncomingCall(profileID, callID, from string) []byte {
	return mustJSON(map[string]any{"messages": map[string]any{"wh_type": "incoming_call", "profile_id": profileID,
		"id": callID, "from": from, "chatId": from, "time": time.Now().Unix(), "status": "offer"}})
}

// DeliverOptions bound the retries of Deliver.
type DeliverOptions struct {
	Client      *http.Client
	MaxAttempts int           // default 4
	Backoff     time.Duration // default 50ms, doubled, capped at 2s
}

// Deliver POSTs a webhook body with "Authorization: <auth>" (when set),
// retrying non-2xx answers and network errors with bounded backoff.
func Deliver(ctx context.Context, url, auth string, body []byte) error {
	return DeliverWith(ctx, DeliverOptions{}, url, auth, body)
}

// Headers returns the headers Wappi sends with a webhook: JSON, and
// "Authorization: <auth>" when the profile's webhook has one.
func Headers(auth string) http.Header {
	return webhook.JSONHeader("Authorization", auth)
}

// DeliverWith is Deliver with explicit options.
func DeliverWith(ctx context.Context, o DeliverOptions, url, auth string, body []byte) error {
	r := webhook.Retry{MaxAttempts: o.MaxAttempts, Backoff: o.Backoff}.
		Or(webhook.Retry{MaxAttempts: 4, Backoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second})
	n, err := webhook.Post(ctx, o.Client, url, Headers(auth), body, r)
	return webhook.Failed(ctx, n, err, "wappisim: delivery failed after %d attempts: %w")
}
