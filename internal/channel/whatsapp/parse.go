package whatsapp

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/meta"
	"github.com/parleyhq/parley/internal/inbox"
)

type waEnvelope struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      meta.Str `json:"id"`
		Changes []struct {
			Field string          `json:"field"`
			Value json.RawMessage `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

type waContact struct {
	Profile struct {
		Name     string `json:"name"`
		Username string `json:"username"`
	} `json:"profile"`
	WaID   meta.Str `json:"wa_id"`
	UserID meta.Str `json:"user_id"`
}

type waError struct {
	Code      meta.Num `json:"code"`
	Title     string   `json:"title"`
	Message   string   `json:"message"`
	Details   string   `json:"details"` // older payloads put it here
	ErrorData struct {
		Details string `json:"details"`
	} `json:"error_data"`
}

type waValue struct {
	Metadata struct {
		DisplayPhoneNumber meta.Str `json:"display_phone_number"`
		PhoneNumberID      meta.Str `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts     []waContact       `json:"contacts"`
	Messages     []json.RawMessage `json:"messages"`
	MessageEchos []json.RawMessage `json:"message_echoes"`
	Statuses     []json.RawMessage `json:"statuses"`
	Errors       []waError         `json:"errors"`
}

type waMedia struct {
	ID       meta.Str `json:"id"`
	MimeType string   `json:"mime_type"`
	Caption  string   `json:"caption"`
	Filename string   `json:"filename"`
	Voice    bool     `json:"voice"`
	Animated bool     `json:"animated"`
	URL      string   `json:"url"`
}

type waMessage struct {
	From       meta.Str `json:"from"`
	FromUserID meta.Str `json:"from_user_id"`
	To         meta.Str `json:"to"`
	ToUserID   meta.Str `json:"to_user_id"`
	ID         string   `json:"id"`
	Timestamp  meta.Num `json:"timestamp"`
	Type       string   `json:"type"`
	Text       *struct {
		Body string `json:"body"`
	} `json:"text"`
	Image    *waMedia `json:"image"`
	Video    *waMedia `json:"video"`
	Audio    *waMedia `json:"audio"`
	Document *waMedia `json:"document"`
	Sticker  *waMedia `json:"sticker"`
	Location *struct {
		Latitude  meta.Num `json:"latitude"`
		Longitude meta.Num `json:"longitude"`
		Name      string   `json:"name"`
		Address   string   `json:"address"`
		URL       string   `json:"url"`
	} `json:"location"`
	Contacts    json.RawMessage `json:"contacts"`
	Interactive *struct {
		Type        string `json:"type"`
		ButtonReply *struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"button_reply"`
		ListReply *struct {
			ID          string `json:"id"`
			Title       string `json:"title"`
			Description string `json:"description"`
		} `json:"list_reply"`
		NfmReply *struct {
			Name         string `json:"name"`
			Body         string `json:"body"`
			ResponseJSON string `json:"response_json"`
		} `json:"nfm_reply"`
	} `json:"interactive"`
	Button *struct {
		Payload string `json:"payload"`
		Text    string `json:"text"`
	} `json:"button"`
	Reaction *struct {
		MessageID string `json:"message_id"`
		Emoji     string `json:"emoji"`
	} `json:"reaction"`
	Context *struct {
		From                meta.Str `json:"from"`
		ID                  string   `json:"id"`
		Forwarded           bool     `json:"forwarded"`
		FrequentlyForwarded bool     `json:"frequently_forwarded"`
	} `json:"context"`
	System *struct {
		Body string `json:"body"`
	} `json:"system"`
	Errors []waError `json:"errors"`
}

type waStatus struct {
	ID              string    `json:"id"`
	Status          string    `json:"status"`
	Timestamp       meta.Num  `json:"timestamp"`
	RecipientID     meta.Str  `json:"recipient_id"`
	RecipientUserID meta.Str  `json:"recipient_user_id"`
	Errors          []waError `json:"errors"`
}

// errorText renders WhatsApp errors[] as the provider words them.
func errorText(errs []waError) string {
	var parts []string
	for _, e := range errs {
		msg := e.Title
		if e.Message != "" && e.Message != e.Title {
			if msg != "" {
				msg += ": "
			}
			msg += e.Message
		}
		for _, d := range []string{e.ErrorData.Details, e.Details} {
			if d != "" && !strings.Contains(msg, d) {
				if msg != "" {
					msg += ": "
				}
				msg += d
			}
		}
		if c := e.Code.Int64(); c != 0 {
			msg = fmt.Sprintf("(#%d) %s", c, msg)
		}
		if msg != "" {
			parts = append(parts, msg)
		}
	}
	return strings.Join(parts, "; ")
}

// Parse reads a WhatsApp Cloud API webhook body. Values whose
// metadata.phone_number_id differs from phoneNumberID (when set) are skipped.
// Changes whose field is not "messages" or "smb_message_echoes" (template,
// account and quality updates) carry no conversation and are ignored.
func Parse(body []byte, phoneNumberID string) ([]channel.Event, error) {
	var env waEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, inbox.Wrap(inbox.Invalid, err, "unreadable WhatsApp webhook body")
	}
	if env.Object != "" && env.Object != "whatsapp_business_account" {
		return nil, inbox.Errorf(inbox.Invalid, "unexpected webhook object %q", env.Object)
	}
	var out []channel.Event
	for _, entry := range env.Entry {
		for _, ch := range entry.Changes {
			if ch.Field != "" && ch.Field != "messages" && ch.Field != "smb_message_echoes" {
				continue
			}
			var v waValue
			if err := json.Unmarshal(ch.Value, &v); err != nil {
				continue // cannot be routed to a phone number; the raw body is kept by the caller
			}
			if phoneNumberID != "" && string(v.Metadata.PhoneNumberID) != phoneNumberID {
				continue
			}
			for _, raw := range v.Messages {
				out = append(out, parseMessage(raw, &v, false))
			}
			for _, raw := range v.MessageEchos {
				out = append(out, parseMessage(raw, &v, true))
			}
			for _, raw := range v.Statuses {
				if e, ok := parseStatus(raw); ok {
					out = append(out, e)
				}
			}
			if e, ok := valueErrors(ch.Value, v.Errors); ok {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// valueErrors turns value.errors[] (a problem of the phone number or the
// app, not of one message: e.g. the webhook could not be delivered
// complete) into a channel error. It does not touch the channel's
// authorization: the number still works. The id is a hash of the errors
// piece, so a redelivery is recognised.
func valueErrors(value json.RawMessage, errs []waError) (channel.Event, bool) {
	if len(errs) == 0 {
		return channel.Event{}, false
	}
	var piece struct {
		Errors json.RawMessage `json:"errors"`
	}
	_ = json.Unmarshal(value, &piece) // value already decoded once
	raw := append(json.RawMessage(nil), piece.Errors...)
	text := errorText(errs)
	if text == "" {
		text = "WhatsApp reported an error without a description"
	}
	return channel.Event{
		Type: channel.EventChannelError, Error: text,
		ExternalID: "errors:" + meta.ShortHash(raw), Raw: raw,
	}, true
}

func findContact(cs []waContact, waID, userID string) *waContact {
	for i := range cs {
		if waID != "" && string(cs[i].WaID) == waID {
			return &cs[i]
		}
	}
	for i := range cs {
		if userID != "" && string(cs[i].UserID) == userID {
			return &cs[i]
		}
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func party(v *waValue, waID, userID string) channel.Party {
	p := channel.Party{Identifier: waID}
	if p.Identifier == "" {
		p.Identifier = userID
	}
	if isDigits(waID) {
		p.Phone = "+" + waID
	}
	if c := findContact(v.Contacts, waID, userID); c != nil {
		p.Name = c.Profile.Name
		if p.Name == "" {
			p.Name = c.Profile.Username
		}
	}
	return p
}

// ownParty is our business number, the sender of echoes.
func ownParty(v *waValue) channel.Party {
	p := channel.Party{Identifier: string(v.Metadata.PhoneNumberID)}
	if own := string(v.Metadata.DisplayPhoneNumber); isDigits(own) {
		p.Phone = "+" + own
	}
	return p
}

func parseMessage(raw json.RawMessage, v *waValue, echo bool) channel.Event {
	raw = append(json.RawMessage(nil), raw...)
	var m waMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return unreadableMessage(raw, v, echo)
	}
	e := channel.Event{
		Type:       channel.EventMessage,
		ExternalID: m.ID,
		Direction:  "inbound",
		Timestamp:  meta.Seconds(m.Timestamp),
		Raw:        raw,
	}
	if e.ExternalID == "" {
		e.ExternalID = "nowamid:" + meta.ShortHash(raw)
	}
	if echo {
		e.Direction = "outbound"
		e.Recipient = party(v, string(m.To), string(m.ToUserID))
		e.ChatID = e.Recipient.Identifier
		e.Sender = ownParty(v)
	} else {
		e.Sender = party(v, string(m.From), string(m.FromUserID))
		e.ChatID = e.Sender.Identifier
	}
	if m.Context != nil {
		e.ReplyToID = m.Context.ID
		e.Forwarded = m.Context.Forwarded || m.Context.FrequentlyForwarded
	}
	if errs := errorText(m.Errors); errs != "" {
		e.Error = errs
	}
	media := func(kind string, md *waMedia) {
		if md == nil {
			unsupported(&e, m.Type, raw)
			return
		}
		if kind == inbox.KindAudio && md.Voice {
			kind = inbox.KindVoice
		}
		e.Kind = kind
		e.Text = md.Caption
		ref := string(md.ID)
		if ref == "" {
			ref = md.URL
		}
		e.Attachments = []channel.Media{{Kind: kind, MimeType: md.MimeType, Filename: md.Filename, ProviderRef: ref, Caption: md.Caption}}
	}
	switch m.Type {
	case "text":
		if m.Text == nil {
			unsupported(&e, m.Type, raw)
			break
		}
		e.Kind = inbox.KindText
		e.Text = m.Text.Body
	case "image":
		media(inbox.KindImage, m.Image)
	case "video":
		media(inbox.KindVideo, m.Video)
	case "audio":
		media(inbox.KindAudio, m.Audio)
	case "voice": // defensive: some gateways name it so
		if m.Audio != nil {
			m.Audio.Voice = true
		}
		media(inbox.KindAudio, m.Audio)
	case "document":
		media(inbox.KindDocument, m.Document)
	case "sticker":
		media(inbox.KindSticker, m.Sticker)
	case "location":
		if m.Location == nil {
			unsupported(&e, m.Type, raw)
			break
		}
		l := m.Location
		e.Kind = inbox.KindLocation
		e.Location = &inbox.Location{Latitude: l.Latitude.Value, Longitude: l.Longitude.Value, Name: l.Name, Address: l.Address, URL: l.URL}
		e.Text = strings.TrimSpace(strings.Join(nonEmpty(l.Name, l.Address), ", "))
	case "contacts":
		if len(m.Contacts) == 0 {
			unsupported(&e, m.Type, raw)
			break
		}
		e.Kind = inbox.KindContacts
		e.Content = append(json.RawMessage(nil), m.Contacts...)
		e.Text = contactsText(m.Contacts)
	case "interactive":
		it := m.Interactive
		switch {
		case it != nil && it.ButtonReply != nil:
			e.Kind = inbox.KindInteractive
			e.Text = it.ButtonReply.Title
			e.Content = mustJSON(map[string]string{"type": "button_reply", "id": it.ButtonReply.ID, "title": it.ButtonReply.Title})
		case it != nil && it.ListReply != nil:
			e.Kind = inbox.KindInteractive
			e.Text = it.ListReply.Title
			e.Content = mustJSON(map[string]string{"type": "list_reply", "id": it.ListReply.ID, "title": it.ListReply.Title, "description": it.ListReply.Description})
		case it != nil && it.NfmReply != nil:
			e.Kind = inbox.KindInteractive
			e.Text = it.NfmReply.Body
			if e.Text == "" {
				e.Text = it.NfmReply.Name
			}
			e.Content = mustJSON(map[string]string{"type": "nfm_reply", "name": it.NfmReply.Name, "body": it.NfmReply.Body, "response_json": it.NfmReply.ResponseJSON})
		default:
			unsupported(&e, m.Type, raw)
		}
	case "button":
		if m.Button == nil {
			unsupported(&e, m.Type, raw)
			break
		}
		e.Kind = inbox.KindInteractive
		e.Text = m.Button.Text
		e.Content = mustJSON(map[string]string{"type": "button", "payload": m.Button.Payload, "text": m.Button.Text})
	case "reaction":
		if m.Reaction == nil {
			unsupported(&e, m.Type, raw)
			break
		}
		e.Type = channel.EventReaction
		e.TargetID = m.Reaction.MessageID
		e.Emoji = m.Reaction.Emoji // omitted or "" = removal
	default: // unsupported, unknown, system, order, request_welcome, new types
		unsupported(&e, m.Type, raw)
		if m.System != nil && m.System.Body != "" {
			e.Text = m.System.Body
		}
	}
	return e
}

// unreadableMessage is the placeholder of a message that does not fit the
// expected shape (a field of an unexpected type). What can be read loosely
// still names it: its wamid (so a redelivery collapses onto it; else a hash
// of the piece), its sender (the recipient for an echo) and its time.
func unreadableMessage(raw json.RawMessage, v *waValue, echo bool) channel.Event {
	e := channel.Event{
		Type: channel.EventMessage, Kind: inbox.KindUnsupported, Direction: "inbound",
		ExternalID: "unparsed:" + meta.ShortHash(raw), Text: "[Unreadable WhatsApp message]",
		Content: raw, Raw: raw,
	}
	var id, from, fromUser, to, toUser meta.Str
	var ts meta.Num
	meta.LooseField(raw, &id, "id")
	meta.LooseField(raw, &from, "from")
	meta.LooseField(raw, &fromUser, "from_user_id")
	meta.LooseField(raw, &to, "to")
	meta.LooseField(raw, &toUser, "to_user_id")
	meta.LooseField(raw, &ts, "timestamp")
	if id != "" {
		e.ExternalID = string(id)
	}
	e.Timestamp = meta.Seconds(ts)
	if echo {
		e.Direction = "outbound"
		e.Recipient = party(v, string(to), string(toUser))
		e.ChatID = e.Recipient.Identifier
		e.Sender = ownParty(v)
	} else if p := party(v, string(from), string(fromUser)); p.Identifier != "" {
		e.Sender = p
		e.ChatID = p.Identifier
	}
	return e
}

func unsupported(e *channel.Event, typ string, raw json.RawMessage) {
	e.Type = channel.EventMessage
	e.Kind = inbox.KindUnsupported
	e.Content = raw
	e.Attachments = nil
	if typ == "" {
		typ = "unknown"
	}
	e.Text = "[Unsupported WhatsApp message: " + typ + "]"
	if e.Error != "" {
		e.Text += " " + e.Error
	}
}

func parseStatus(raw json.RawMessage) (channel.Event, bool) {
	raw = append(json.RawMessage(nil), raw...)
	var s waStatus
	if err := json.Unmarshal(raw, &s); err != nil || s.ID == "" {
		return channel.Event{}, false
	}
	var st string
	switch strings.ToLower(s.Status) {
	case "sent":
		st = inbox.MsgSent
	case "delivered":
		st = inbox.MsgDelivered
	case "read", "played":
		st = inbox.MsgRead
	case "failed":
		st = inbox.MsgFailed
	default:
		return channel.Event{}, false
	}
	rcpt := channel.Party{Identifier: string(s.RecipientID)}
	if rcpt.Identifier == "" {
		rcpt.Identifier = string(s.RecipientUserID)
	}
	if isDigits(string(s.RecipientID)) {
		rcpt.Phone = "+" + string(s.RecipientID)
	}
	return channel.Event{
		Type:       channel.EventStatus,
		ExternalID: s.ID + ":" + strings.ToLower(s.Status),
		TargetID:   s.ID,
		ChatID:     rcpt.Identifier,
		Recipient:  rcpt,
		Direction:  "outbound",
		Status:     st,
		Error:      errorText(s.Errors),
		Timestamp:  meta.Seconds(s.Timestamp),
		Raw:        raw,
	}, true
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out
}

type waCard struct {
	Name struct {
		FormattedName string `json:"formatted_name"`
		FirstName     string `json:"first_name"`
		LastName      string `json:"last_name"`
	} `json:"name"`
	Phones []struct {
		Phone string   `json:"phone"`
		WaID  meta.Str `json:"wa_id"`
	} `json:"phones"`
	Emails []struct {
		Email string `json:"email"`
	} `json:"emails"`
}

// contactsText renders shared contact cards readably, one per line.
func contactsText(raw json.RawMessage) string {
	var cards []waCard
	if json.Unmarshal(raw, &cards) != nil {
		return "[Contact card]"
	}
	var lines []string
	for _, c := range cards {
		name := c.Name.FormattedName
		if name == "" {
			name = strings.TrimSpace(c.Name.FirstName + " " + c.Name.LastName)
		}
		var bits []string
		for _, p := range c.Phones {
			if p.Phone != "" {
				bits = append(bits, p.Phone)
			} else if p.WaID != "" {
				bits = append(bits, "+"+string(p.WaID))
			}
		}
		for _, em := range c.Emails {
			if em.Email != "" {
				bits = append(bits, em.Email)
			}
		}
		line := name
		if len(bits) > 0 {
			if line != "" {
				line += ": "
			}
			line += strings.Join(bits, ", ")
		}
		if line == "" {
			line = "[Contact card]"
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return "[Contact card]"
	}
	return strings.Join(lines, "\n")
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
