package metasim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// M is a JSON object under construction.
type M = map[string]any

// MetaEscape rewrites compact JSON the way Meta sends it: every non-ASCII
// character as a lowercase \uXXXX escape (characters beyond the BMP as a
// UTF-16 surrogate pair) and "/" as "\/". Both only occur inside strings, so
// a byte-level rewrite is safe.
func MetaEscape(b []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/4)
	for len(b) > 0 {
		c := b[0]
		if c < utf8.RuneSelf {
			if c == '/' {
				out.WriteString(`\/`)
			} else {
				out.WriteByte(c)
			}
			b = b[1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r > 0xFFFF {
			r -= 0x10000
			fmt.Fprintf(&out, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
			continue
		}
		fmt.Fprintf(&out, `\u%04x`, r)
	}
	return out.Bytes()
}

// Encode marshals v compactly (no HTML escaping) and applies MetaEscape.
func Encode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("metasim: encode payload: %v", err))
	}
	return MetaEscape(bytes.TrimRight(buf.Bytes(), "\n"))
}

func ts(sec int64) string { return strconv.FormatInt(sec, 10) }

// ---- WhatsApp ----

// WAContact is one element of value.contacts.
type WAContact struct {
	WaID     string // phone-based id (may be empty for username-only users)
	UserID   string // business-scoped user id (BSUID)
	Name     string
	Username string
}

func (c WAContact) json() M {
	prof := M{"name": c.Name}
	if c.Username != "" {
		prof["username"] = c.Username
	}
	out := M{"profile": prof}
	if c.WaID != "" {
		out["wa_id"] = c.WaID
	}
	if c.UserID != "" {
		out["user_id"] = c.UserID
	}
	return out
}

// WAValue is one change value for one business phone number.
type WAValue struct {
	PhoneNumberID string
	DisplayPhone  string
	Contacts      []WAContact
	Messages      []M
	Statuses      []M
	Errors        []M
}

// WAEntry is one entry (one WhatsApp Business Account) of a webhook.
type WAEntry struct {
	WABAID string
	Values []WAValue
}

// WhatsAppPayload builds a whatsapp_business_account webhook body.
func WhatsAppPayload(entries ...WAEntry) []byte {
	var es []any
	for _, e := range entries {
		var changes []any
		for _, v := range e.Values {
			val := M{
				"messaging_product": "whatsapp",
				"metadata":          M{"display_phone_number": v.DisplayPhone, "phone_number_id": v.PhoneNumberID},
			}
			if len(v.Contacts) > 0 {
				var cs []any
				for _, c := range v.Contacts {
					cs = append(cs, c.json())
				}
				val["contacts"] = cs
			}
			if len(v.Messages) > 0 {
				val["messages"] = v.Messages
			}
			if len(v.Statuses) > 0 {
				val["statuses"] = v.Statuses
			}
			if len(v.Errors) > 0 {
				val["errors"] = v.Errors
			}
			changes = append(changes, M{"value": val, "field": "messages"})
		}
		es = append(es, M{"id": e.WABAID, "changes": changes})
	}
	return Encode(M{"object": "whatsapp_business_account", "entry": es})
}

func waMsg(from, id string, sec int64, typ string) M {
	m := M{"id": id, "timestamp": ts(sec), "type": typ}
	if from != "" {
		m["from"] = from
	}
	return m
}

// WAText is an inbound text message.
func WAText(from, id string, sec int64, body string) M {
	m := waMsg(from, id, sec, "text")
	m["text"] = M{"body": body}
	return m
}

// WAMedia is an inbound image/video/audio/document/sticker message.
func WAMedia(from, id string, sec int64, typ, mediaID, mime, caption, filename string) M {
	m := waMsg(from, id, sec, typ)
	obj := M{"mime_type": mime, "sha256": sha256hex([]byte(mediaID)), "id": mediaID}
	if caption != "" {
		obj["caption"] = caption
	}
	if filename != "" {
		obj["filename"] = filename
	}
	if typ == "audio" {
		obj["voice"] = false
	}
	m[typ] = obj
	return m
}

// WAVoice is an inbound voice note (audio with voice:true).
func WAVoice(from, id string, sec int64, mediaID string) M {
	m := waMsg(from, id, sec, "audio")
	m["audio"] = M{"mime_type": "audio/ogg; codecs=opus", "sha256": sha256hex([]byte(mediaID)), "id": mediaID, "voice": true}
	return m
}

// WALocation is a shared location.
func WALocation(from, id string, sec int64, lat, lng float64, name, address string) M {
	m := waMsg(from, id, sec, "location")
	loc := M{"latitude": lat, "longitude": lng}
	if name != "" {
		loc["name"] = name
	}
	if address != "" {
		loc["address"] = address
	}
	m["location"] = loc
	return m
}

// WAContactCard shares one contact card.
func WAContactCard(from, id string, sec int64, name, phone, waID string) M {
	m := waMsg(from, id, sec, "contacts")
	p := M{"phone": phone, "type": "CELL"}
	if waID != "" {
		p["wa_id"] = waID
	}
	m["contacts"] = []any{M{
		"name":   M{"formatted_name": name, "first_name": name},
		"phones": []any{p},
	}}
	return m
}

// WAReaction reacts to target; emoji "" builds a removal (emoji omitted, as Meta sends it).
func WAReaction(from, id string, sec int64, target, emoji string) M {
	m := waMsg(from, id, sec, "reaction")
	r := M{"message_id": target}
	if emoji != "" {
		r["emoji"] = emoji
	}
	m["reaction"] = r
	return m
}

// WAButtonReply is a tap on an interactive reply button.
func WAButtonReply(from, id string, sec int64, context, buttonID, title string) M {
	m := waMsg(from, id, sec, "interactive")
	m["context"] = M{"from": "", "id": context}
	m["interactive"] = M{"type": "button_reply", "button_reply": M{"id": buttonID, "title": title}}
	return m
}

// WAListReply is a pick from an interactive list.
func WAListReply(from, id string, sec int64, context, rowID, title, description string) M {
	m := waMsg(from, id, sec, "interactive")
	m["context"] = M{"from": "", "id": context}
	m["interactive"] = M{"type": "list_reply", "list_reply": M{"id": rowID, "title": title, "description": description}}
	return m
}

// WATemplateButton is a template quick-reply tap (type "button").
func WATemplateButton(from, id string, sec int64, context, payload, text string) M {
	m := waMsg(from, id, sec, "button")
	m["context"] = M{"from": "", "id": context}
	m["button"] = M{"payload": payload, "text": text}
	return m
}

// WAUnsupported is a message type the Cloud API does not support.
func WAUnsupported(from, id string, sec int64) M {
	m := waMsg(from, id, sec, "unsupported")
	m["errors"] = []any{M{
		"code": 131051, "title": "Message type unknown", "message": "Message type unknown",
		"error_data": M{"details": "Message type is currently not supported."},
	}}
	m["unsupported"] = M{"type": "edit"}
	return m
}

// WithContext marks m as a reply to id (forwarded sets context.forwarded).
func WithContext(m M, from, id string, forwarded bool) M {
	c := M{}
	if from != "" {
		c["from"] = from
	}
	if id != "" {
		c["id"] = id
	}
	if forwarded {
		c["forwarded"] = true
	}
	m["context"] = c
	return m
}

// WAStatus is a delivery report for our message id. errCode != 0 adds errors[].
func WAStatus(id, status, recipient string, sec int64, errCode int, title, details string) M {
	s := M{"id": id, "status": status, "timestamp": ts(sec), "recipient_id": recipient}
	if status == "sent" {
		s["conversation"] = M{"id": sha256hex([]byte(recipient))[:32], "expiration_timestamp": ts(sec + 86400), "origin": M{"type": "service"}}
	}
	if status != "failed" {
		s["pricing"] = M{"billable": true, "pricing_model": "PMP", "category": "service", "type": "regular"}
	}
	if errCode != 0 {
		s["errors"] = []any{M{
			"code": errCode, "title": title, "message": title,
			"error_data": M{"details": details},
			"href":       "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
		}}
	}
	return s
}

// ---- Messenger and Instagram ----

// MEntry is one entry (one Page or IG account) of a messaging webhook.
type MEntry struct {
	ID        string
	Time      int64 // ms
	Messaging []M
}

// MessagingPayload builds a Messenger ("page") or Instagram ("instagram") body.
func MessagingPayload(object string, entries ...MEntry) []byte {
	var es []any
	for _, e := range entries {
		es = append(es, M{"id": e.ID, "time": e.Time, "messaging": e.Messaging})
	}
	return Encode(M{"object": object, "entry": es})
}

func mEvent(sender, recipient string, ms int64) M {
	return M{"sender": M{"id": sender}, "recipient": M{"id": recipient}, "timestamp": ms}
}

// MText is a user's text message.
func MText(user, page, mid string, ms int64, text string) M {
	e := mEvent(user, page, ms)
	e["message"] = M{"mid": mid, "text": text}
	return e
}

// MReplyText is a user's text quoting replyTo.
func MReplyText(user, page, mid string, ms int64, text, replyTo string) M {
	e := mEvent(user, page, ms)
	e["message"] = M{"mid": mid, "text": text, "reply_to": M{"mid": replyTo}}
	return e
}

// MAttachment is a user's attachment (image, video, audio, file, share,
// story_mention, ig_reel...).
func MAttachment(user, page, mid string, ms int64, typ, url string) M {
	e := mEvent(user, page, ms)
	e["message"] = M{"mid": mid, "attachments": []any{M{"type": typ, "payload": M{"url": url}}}}
	return e
}

// MQuickReply is a tap on a quick reply.
func MQuickReply(user, page, mid string, ms int64, text, payload string) M {
	e := mEvent(user, page, ms)
	e["message"] = M{"mid": mid, "text": text, "quick_reply": M{"payload": payload}}
	return e
}

// MEcho is a message our side sent (sender = page, recipient = user).
func MEcho(page, user, mid string, ms int64, text string) M {
	e := mEvent(page, user, ms)
	e["message"] = M{"mid": mid, "is_echo": true, "app_id": 1517776481860111, "text": text}
	return e
}

// MReaction is a react/unreact on target. Unreact carries no emoji.
func MReaction(user, page string, ms int64, target, action, reaction, emoji string) M {
	e := mEvent(user, page, ms)
	r := M{"mid": target, "action": action}
	if action == "react" {
		if reaction != "" {
			r["reaction"] = reaction
		}
		if emoji != "" {
			r["emoji"] = emoji
		}
	}
	e["reaction"] = r
	return e
}

// MRead is a Messenger read receipt (watermark in ms).
func MRead(user, page string, ms, watermark int64) M {
	e := mEvent(user, page, ms)
	e["read"] = M{"watermark": watermark}
	return e
}

// MSeen is an Instagram messaging_seen event (read.mid).
func MSeen(user, account string, ms int64, mid string) M {
	e := mEvent(user, account, ms)
	e["read"] = M{"mid": mid}
	return e
}

// MDelivery is a Messenger delivery receipt; mids may be empty.
func MDelivery(user, page string, ms, watermark int64, mids ...string) M {
	e := mEvent(user, page, ms)
	d := M{"watermark": watermark}
	if len(mids) > 0 {
		d["mids"] = mids
	}
	e["delivery"] = d
	return e
}

// MPostback is a button tap.
func MPostback(user, page, mid string, ms int64, title, payload string) M {
	e := mEvent(user, page, ms)
	e["postback"] = M{"mid": mid, "title": title, "payload": payload}
	return e
}

// MEdit is a customer's edit of mid.
func MEdit(user, page, mid string, ms int64, text string, numEdit int) M {
	e := mEvent(user, page, ms)
	e["message_edit"] = M{"mid": mid, "text": text, "num_edit": numEdit}
	return e
}
