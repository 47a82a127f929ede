package meta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// Flavor tells the shared Messenger-style parser which product it reads.
type Flavor struct {
	Kind   string // messenger|instagram
	Object string // page|instagram
	Label  string // Messenger|Instagram, for placeholder texts
	// OwnIDs are the configured ids of our side (page id, IG account id).
	// An entry whose id is not among them is skipped when its events are
	// addressed to or from that other id and none to or from ours.
	// Empty = accept everything.
	OwnIDs []string
}

type idObj struct {
	ID Str `json:"id"`
}

type mEntry struct {
	ID        Str               `json:"id"`
	Time      Num               `json:"time"`
	Messaging []json.RawMessage `json:"messaging"`
	Standby   []json.RawMessage `json:"standby"`
}

type mAttachment struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
	Title   string          `json:"title"`
	URL     string          `json:"url"`
}

type mAttachmentPayload struct {
	URL         string `json:"url"`
	Title       string `json:"title"`
	StickerID   Num    `json:"sticker_id"`
	ReelVideoID Str    `json:"reel_video_id"`
	IGPostID    Str    `json:"ig_post_media_id"`
	Coordinates *struct {
		Lat  Num `json:"lat"`
		Long Num `json:"long"`
	} `json:"coordinates"`
	Text string `json:"text"`
}

type mMessage struct {
	Mid           string        `json:"mid"`
	Text          string        `json:"text"`
	IsEcho        bool          `json:"is_echo"`
	IsDeleted     bool          `json:"is_deleted"`
	IsUnsupported bool          `json:"is_unsupported"`
	Attachments   []mAttachment `json:"attachments"`
	QuickReply    *struct {
		Payload string `json:"payload"`
	} `json:"quick_reply"`
	ReplyTo *struct {
		Mid   string `json:"mid"`
		Story *struct {
			URL string `json:"url"`
			ID  Str    `json:"id"`
		} `json:"story"`
	} `json:"reply_to"`
}

type mEvent struct {
	Sender    idObj     `json:"sender"`
	Recipient idObj     `json:"recipient"`
	Timestamp Num       `json:"timestamp"`
	Message   *mMessage `json:"message"`
	Reaction  *struct {
		Mid      string `json:"mid"`
		Action   string `json:"action"`
		Reaction string `json:"reaction"`
		Emoji    string `json:"emoji"`
	} `json:"reaction"`
	Read *struct {
		Watermark Num    `json:"watermark"`
		Mid       string `json:"mid"`
	} `json:"read"`
	Delivery *struct {
		Watermark Num      `json:"watermark"`
		Mids      []string `json:"mids"`
	} `json:"delivery"`
	Postback *struct {
		Mid     string `json:"mid"`
		Title   string `json:"title"`
		Payload string `json:"payload"`
	} `json:"postback"`
	MessageEdit *struct {
		Mid     string `json:"mid"`
		Text    string `json:"text"`
		NumEdit Num    `json:"num_edit"`
	} `json:"message_edit"`
}

// ReactionEmoji maps Messenger/Instagram reaction names to an emoji.
func ReactionEmoji(name string) string {
	switch strings.ToLower(name) {
	case "like":
		return "👍"
	case "love":
		return "❤️"
	case "smile", "laugh", "haha":
		return "😆"
	case "wow":
		return "😮"
	case "sad":
		return "😢"
	case "angry":
		return "😠"
	case "dislike":
		return "👎"
	}
	return ""
}

// ReactionName maps an emoji back to the Send API reaction name (love when unknown).
func ReactionName(emoji string) string {
	for _, n := range []string{"like", "love", "smile", "wow", "sad", "angry", "dislike"} {
		e := ReactionEmoji(n)
		if emoji == e || strings.TrimSuffix(emoji, "\uFE0F") == strings.TrimSuffix(e, "\uFE0F") {
			return n
		}
	}
	return "love"
}

// ParseMessaging parses a Messenger ("page") or Instagram ("instagram")
// webhook body into events. Items of entry[].standby (another app owns the
// thread) are parsed like entry[].messaging so the inbox history stays
// complete. entry[].changes (comments, mentions) are not messaging and are
// ignored.
func ParseMessaging(body []byte, f Flavor) ([]channel.Event, error) {
	var env struct {
		Object string   `json:"object"`
		Entry  []mEntry `json:"entry"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, inbox.Wrap(inbox.Invalid, err, "unreadable %s webhook body", f.Label)
	}
	if env.Object != "" && env.Object != f.Object {
		return nil, inbox.Errorf(inbox.Invalid, "unexpected webhook object %q for %s", env.Object, f.Label)
	}
	own := map[string]bool{}
	for _, id := range f.OwnIDs {
		if id != "" {
			own[id] = true
		}
	}
	var out []channel.Event
	for _, e := range env.Entry {
		items := append(append([]json.RawMessage(nil), e.Messaging...), e.Standby...)
		if len(own) > 0 && !own[string(e.ID)] && !entryTouches(items, own, "") && entryTouches(items, nil, string(e.ID)) {
			// The entry names another account and its events are addressed
			// to it: another Page/account subscribed to the same app. An
			// entry whose id matches none of its events' parties (id schemes
			// differ between login types) is kept rather than lost.
			continue
		}
		entryTime := Millis(e.Time)
		for _, raw := range items {
			out = append(out, parseItem(raw, string(e.ID), own, entryTime, f)...)
		}
	}
	return out, nil
}

// entryTouches reports whether any event of items has a sender or recipient
// in own, or equal to id when id is not empty.
func entryTouches(items []json.RawMessage, own map[string]bool, id string) bool {
	for _, raw := range items {
		var ev mEvent
		if json.Unmarshal(raw, &ev) != nil {
			continue
		}
		s, r := string(ev.Sender.ID), string(ev.Recipient.ID)
		if own[s] || own[r] || (id != "" && (s == id || r == id)) {
			return true
		}
	}
	return false
}

func parseItem(raw json.RawMessage, entryID string, own map[string]bool, entryTime time.Time, f Flavor) []channel.Event {
	raw = append(json.RawMessage(nil), raw...)
	var ev mEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return []channel.Event{unreadableItem(raw, entryID, own, entryTime, f)}
	}
	ts := Millis(ev.Timestamp)
	if ts.IsZero() {
		ts = entryTime
	}
	sender, recipient := string(ev.Sender.ID), string(ev.Recipient.ID)
	base := channel.Event{
		ChatID:    sender,
		Sender:    channel.Party{Identifier: sender},
		Direction: "inbound",
		Timestamp: ts,
		Raw:       raw,
	}
	tsKey := ev.Timestamp.Text
	switch {
	case ev.Message != nil:
		return messageEvents(base, ev, entryID, own, f)
	case ev.Reaction != nil:
		r := ev.Reaction
		e := base
		e.Type = channel.EventReaction
		e.TargetID = r.Mid
		action := strings.ToLower(r.Action)
		if action == "" {
			action = "react"
		}
		e.ExternalID = sender + ":" + r.Mid + ":" + action + ":" + tsKey
		if action != "unreact" {
			e.Emoji = r.Emoji
			if e.Emoji == "" {
				e.Emoji = ReactionEmoji(r.Reaction)
			}
			if e.Emoji == "" {
				e.Emoji = r.Reaction
			}
			if e.Emoji == "" {
				e.Emoji = "👍"
			}
		}
		return []channel.Event{e}
	case ev.Read != nil:
		e := base
		e.Type = channel.EventRead
		e.TargetID = ev.Read.Mid
		e.Watermark = Millis(ev.Read.Watermark)
		if e.Watermark.IsZero() {
			e.Watermark = ts
		}
		key := ev.Read.Mid
		if key == "" {
			key = ev.Read.Watermark.Text
		}
		e.ExternalID = "read:" + sender + ":" + key
		return []channel.Event{e}
	case ev.Delivery != nil:
		wm := Millis(ev.Delivery.Watermark)
		if len(ev.Delivery.Mids) == 0 {
			e := base
			e.Type = channel.EventStatus
			e.Status = inbox.MsgDelivered
			e.Watermark = wm
			e.ExternalID = "delivery:" + sender + ":" + ev.Delivery.Watermark.Text
			return []channel.Event{e}
		}
		out := make([]channel.Event, 0, len(ev.Delivery.Mids))
		for _, mid := range ev.Delivery.Mids {
			e := base
			e.Type = channel.EventStatus
			e.Status = inbox.MsgDelivered
			e.TargetID = mid
			e.Watermark = wm
			e.ExternalID = mid + ":delivered"
			out = append(out, e)
		}
		return out
	case ev.Postback != nil:
		p := ev.Postback
		e := base
		e.Type = channel.EventMessage
		e.Kind = inbox.KindInteractive
		e.Text = p.Title
		if e.Text == "" {
			e.Text = p.Payload
		}
		e.Content = mustJSON(map[string]string{"type": "postback", "title": p.Title, "payload": p.Payload})
		e.ExternalID = p.Mid
		if e.ExternalID == "" {
			e.ExternalID = "postback:" + sender + ":" + tsKey + ":" + shortHash([]byte(p.Payload))
		}
		return []channel.Event{e}
	case ev.MessageEdit != nil:
		m := ev.MessageEdit
		e := base
		e.Type = channel.EventEdit
		e.TargetID = m.Mid
		e.Text = m.Text
		e.ExternalID = m.Mid + ":edit:" + m.NumEdit.Text
		return []channel.Event{e}
	}
	// optin, referral, handover, account linking...: keep as unsupported.
	e := base
	e.Type = channel.EventMessage
	e.Kind = inbox.KindUnsupported
	name := firstKey(raw, "sender", "recipient", "timestamp")
	e.Text = fmt.Sprintf("[Unsupported %s event: %s]", f.Label, name)
	e.Content = raw
	e.ExternalID = name + ":" + sender + ":" + tsKey + ":" + shortHash(raw)
	if own[sender] && recipient != "" { // our side acted: the chat is the user's
		e.ChatID = recipient
		e.Direction = "outbound"
	}
	return []channel.Event{e}
}

// unreadableItem is the placeholder of a messaging item that does not fit
// the expected shape (a field of an unexpected type). What can still be read
// loosely names it: message.mid is its id when present (a redelivery
// collapses onto it), else a hash of the item; sender.id is the customer, or
// recipient.id when the sender is our own account (as for echoes).
func unreadableItem(raw json.RawMessage, entryID string, own map[string]bool, entryTime time.Time, f Flavor) channel.Event {
	e := channel.Event{
		Type: channel.EventMessage, Kind: inbox.KindUnsupported, Direction: "inbound",
		ExternalID: "unparsed:" + shortHash(raw),
		Text:       fmt.Sprintf("[Unsupported %s event]", f.Label),
		Content:    raw, Raw: raw, Timestamp: entryTime,
	}
	var mid, sender, recipient Str
	var ts Num
	LooseField(raw, &mid, "message", "mid")
	LooseField(raw, &sender, "sender", "id")
	LooseField(raw, &recipient, "recipient", "id")
	if LooseField(raw, &ts, "timestamp") && !Millis(ts).IsZero() {
		e.Timestamp = Millis(ts)
	}
	if mid != "" {
		e.ExternalID = string(mid)
	}
	s, r := string(sender), string(recipient)
	if s != "" && (s == entryID || own[s]) && r != "" && r != entryID && !own[r] {
		e.Direction = "outbound"
		e.Sender = channel.Party{Identifier: string(sender)}
		e.Recipient = channel.Party{Identifier: string(recipient)}
		e.ChatID = string(recipient)
	} else if sender != "" {
		e.Sender = channel.Party{Identifier: string(sender)}
		e.ChatID = string(sender)
	}
	return e
}

// LooseField decodes the value at path (object keys from the top) of raw
// into v, ignoring every other part of raw, so that one field of an
// unexpected type elsewhere does not hide it. It reports whether the value
// was present and decoded.
func LooseField(raw json.RawMessage, v any, path ...string) bool {
	cur := raw
	for _, k := range path {
		var m map[string]json.RawMessage
		if json.Unmarshal(cur, &m) != nil {
			return false
		}
		next, ok := m[k]
		if !ok {
			return false
		}
		cur = next
	}
	return json.Unmarshal(cur, v) == nil
}

func messageEvents(base channel.Event, ev mEvent, entryID string, own map[string]bool, f Flavor) []channel.Event {
	m := ev.Message
	sender, recipient := string(ev.Sender.ID), string(ev.Recipient.ID)
	e := base
	e.Type = channel.EventMessage
	e.ExternalID = m.Mid
	if e.ExternalID == "" {
		e.ExternalID = "nomid:" + sender + ":" + ev.Timestamp.Text + ":" + shortHash(base.Raw)
	}
	echo := m.IsEcho || (sender != "" && (sender == entryID || own[sender]) && recipient != "" && recipient != entryID && !own[recipient])
	if echo {
		e.Direction = "outbound"
		e.ChatID = recipient
		e.Sender = channel.Party{Identifier: sender}
		e.Recipient = channel.Party{Identifier: recipient}
	}
	if m.IsDeleted {
		d := e
		d.Type = channel.EventDelete
		d.TargetID = m.Mid
		d.ExternalID = m.Mid + ":deleted"
		return []channel.Event{d}
	}
	e.Text = m.Text
	if m.ReplyTo != nil {
		e.ReplyToID = m.ReplyTo.Mid
	}
	var extras []map[string]string
	var unsupported []string
	for _, a := range m.Attachments {
		var p mAttachmentPayload
		if len(bytes.TrimSpace(a.Payload)) > 0 && a.Payload[0] == '{' {
			_ = json.Unmarshal(a.Payload, &p)
		}
		switch t := strings.ToLower(a.Type); t {
		case "image", "video", "audio", "file":
			kind := map[string]string{"image": inbox.KindImage, "video": inbox.KindVideo, "audio": inbox.KindAudio, "file": inbox.KindDocument}[t]
			if t == "image" && p.StickerID.Set {
				kind = inbox.KindSticker
			}
			if p.URL == "" {
				unsupported = append(unsupported, t)
				continue
			}
			e.Attachments = append(e.Attachments, channel.Media{Kind: kind, ProviderRef: p.URL, Filename: filenameFromURL(p.URL)})
		case "location":
			if p.Coordinates != nil {
				e.Location = &inbox.Location{Latitude: p.Coordinates.Lat.Value, Longitude: p.Coordinates.Long.Value, Name: a.Title, URL: a.URL}
			}
		case "share", "story_mention", "ig_reel", "reel", "ig_post", "fallback", "template", "ig_story", "story":
			url := p.URL
			if url == "" {
				url = a.URL
			}
			title := p.Title
			if title == "" {
				title = a.Title
			}
			if title == "" {
				title = p.Text
			}
			extras = append(extras, map[string]string{"type": t, "url": url, "title": title})
		default: // gifs (animated_image), stickers, anything new
			if t == "" {
				t = "unknown"
			}
			unsupported = append(unsupported, t)
		}
	}
	if m.ReplyTo != nil && m.ReplyTo.Story != nil {
		extras = append(extras, map[string]string{"type": "story_reply", "url": m.ReplyTo.Story.URL, "id": string(m.ReplyTo.Story.ID)})
	}
	var lines []string
	for _, x := range extras {
		lines = append(lines, extraLine(x, f))
	}
	for _, u := range unsupported {
		lines = append(lines, fmt.Sprintf("[Unsupported %s attachment: %s]", f.Label, u))
	}
	if len(lines) > 0 {
		if e.Text != "" {
			lines = append([]string{e.Text}, lines...)
		}
		e.Text = strings.Join(lines, "\n")
	}
	content := map[string]any{}
	if len(extras) > 0 {
		content["attachments"] = extras
	}
	if m.QuickReply != nil {
		content["type"] = "quick_reply"
		content["payload"] = m.QuickReply.Payload
	}
	if len(content) > 0 {
		e.Content = mustJSON(content)
	}
	switch {
	case m.QuickReply != nil:
		e.Kind = inbox.KindInteractive
	case len(e.Attachments) > 0:
		e.Kind = e.Attachments[0].Kind
	case e.Location != nil:
		e.Kind = inbox.KindLocation
	case m.Text != "" || len(extras) > 0:
		e.Kind = inbox.KindText
	default:
		e.Kind = inbox.KindUnsupported
		if e.Text == "" {
			e.Text = fmt.Sprintf("[Unsupported %s message]", f.Label)
		}
		if len(e.Content) == 0 {
			e.Content = base.Raw
		}
	}
	if m.IsUnsupported && e.Kind == inbox.KindText && m.Text == "" {
		e.Kind = inbox.KindUnsupported
	}
	return []channel.Event{e}
}

func extraLine(x map[string]string, f Flavor) string {
	label := map[string]string{
		"share": "Shared post", "ig_post": "Shared post", "story_mention": "Story mention",
		"ig_reel": "Reel", "reel": "Reel", "fallback": "Link", "template": "Template",
		"story_reply": "Reply to story", "ig_story": "Story", "story": "Story",
	}[x["type"]]
	if label == "" {
		label = f.Label + " " + x["type"]
	}
	parts := []string{"[" + label + "]"}
	if x["title"] != "" {
		parts = append(parts, x["title"])
	}
	if x["url"] != "" {
		parts = append(parts, x["url"])
	}
	return strings.Join(parts, " ")
}

func filenameFromURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.LastIndexByte(u, '/'); i >= 0 {
		u = u[i+1:]
	}
	if !strings.Contains(u, ".") || len(u) > 200 {
		return ""
	}
	return u
}

// firstKey returns the first top-level key of a JSON object not in skip.
func firstKey(raw []byte, skip ...string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return "unknown"
	}
	best := ""
	for k := range m {
		skipped := false
		for _, s := range skip {
			if k == s {
				skipped = true
			}
		}
		if !skipped && (best == "" || k < best) {
			best = k
		}
	}
	if best == "" {
		return "unknown"
	}
	return best
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
