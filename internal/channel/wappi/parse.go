package wappi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// event is one webhook element. Webhooks are snake_case, history camelCase:
// both spellings are read. Every scalar is lenient.
type event struct {
	WhType      flexString      `json:"wh_type"`
	ProfileID   flexString      `json:"profile_id"`
	ID          flexString      `json:"id"`
	MessageID   flexString      `json:"message_id"`
	Type        flexString      `json:"type"`
	Body        json.RawMessage `json:"body"`
	From        flexString      `json:"from"`
	To          flexString      `json:"to"`
	ChatID      flexString      `json:"chatId"`
	ChatID2     flexString      `json:"chat_id"`
	SenderName  flexString      `json:"senderName"`
	SenderName2 flexString      `json:"sender_name"`
	ContactName flexString      `json:"contact_name"`
	Username    flexString      `json:"username"`
	IsMe        flexBool        `json:"is_me"`
	FromMe      flexBool        `json:"fromMe"`
	IsReply     flexBool        `json:"isReply"`
	IsReply2    flexBool        `json:"is_reply"`
	StanzaID    flexString      `json:"stanza_id"`
	StanzaID2   flexString      `json:"stanzaId"`
	IsEdited    flexBool        `json:"is_edited"`
	IsDeleted   flexBool        `json:"is_deleted"`
	IsForwarded flexBool        `json:"is_forwarded"`
	Time        flexString      `json:"time"`
	Timestamp   flexString      `json:"timestamp"`
	ChatType    flexString      `json:"chat_type"`
	IsGroup     flexBool        `json:"isGroup"`
	IsGroup2    flexBool        `json:"is_group"`
	FileLink    flexString      `json:"file_link"`
	FileName    flexString      `json:"file_name"`
	FileName2   flexString      `json:"fileName"`
	MimeType    flexString      `json:"mimetype"`
	MimeType2   flexString      `json:"mime_type"`
	Caption     flexString      `json:"caption"`
	MediaInfo   json.RawMessage `json:"media_info"` // read by mediaInfo: a non-object must not hide the message
	Status      flexString      `json:"status"`
	Latitude    flexString      `json:"latitude"`
	Longitude   flexString      `json:"longitude"`
	Lat         flexString      `json:"lat"`
	Lng         flexString      `json:"lng"`
	Authorized  flexString      `json:"authorized"`
	AppStatus   flexString      `json:"app_status"`
	Detail      flexString      `json:"detail"`
	Picture     flexString      `json:"picture"`
}

func (e *event) id() string {
	if e.ID != "" {
		return string(e.ID)
	}
	return string(e.MessageID)
}

type mediaInfo struct {
	Duration flexString `json:"duration"`
	Width    flexString `json:"width"`
	Height   flexString `json:"height"`
	Size     flexString `json:"file_size"`
}

// mediaInfo is media_info when it is an object, else nil.
func (e *event) mediaInfo() *mediaInfo {
	b := bytes.TrimSpace(e.MediaInfo)
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	var m mediaInfo
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return &m
}

func (e *event) stanza() string {
	if e.StanzaID != "" {
		return string(e.StanzaID)
	}
	return string(e.StanzaID2)
}

func (e *event) bodyText() string {
	b := bytes.TrimSpace(e.Body)
	if len(b) == 0 || b[0] != '"' {
		return ""
	}
	var s string
	_ = json.Unmarshal(b, &s)
	return s
}

func firstOf(vals ...flexString) string {
	for _, v := range vals {
		if s := strings.TrimSpace(string(v)); s != "" {
			return s
		}
	}
	return ""
}

// splitEnvelope returns the elements of {"messages":[…]}, {"messages":{…}},
// a bare array or a bare event.
func splitEnvelope(body []byte) ([]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(body, &arr); err != nil {
			return nil, err
		}
		return arr, nil
	}
	var env struct {
		Messages json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	m := bytes.TrimSpace(env.Messages)
	switch {
	case len(m) == 0 || string(m) == "null":
		return []json.RawMessage{body}, nil
	case m[0] == '[':
		var arr []json.RawMessage
		if err := json.Unmarshal(m, &arr); err != nil {
			return nil, err
		}
		return arr, nil
	}
	return []json.RawMessage{m}, nil
}

// canonChat normalizes a chat or user id. WhatsApp: "…@s.whatsapp.net" and
// "…@c.us" become bare digits, groups keep "…@g.us".
func canonChat(net, s string) string {
	s = strings.TrimSpace(s)
	if net != NetWhatsApp {
		return s
	}
	if p, ok := strings.CutSuffix(s, "@s.whatsapp.net"); ok {
		s = p
	} else if p, ok := strings.CutSuffix(s, "@c.us"); ok {
		s = p
	}
	return strings.TrimPrefix(s, "+")
}

// extKey is the dedup id: WhatsApp "<profile>:<id>" (ids are global),
// Telegram/MAX "<profile>:<chat>:<id>" (ids are per chat).
func extKey(net, profile, chat, id string) string {
	if id == "" {
		return ""
	}
	if net == NetWhatsApp {
		return profile + ":" + id
	}
	return profile + ":" + chat + ":" + id
}

// rawID recovers the provider message id from an external id.
func rawID(ext string) string {
	if i := strings.LastIndexByte(ext, ':'); i >= 0 {
		return ext[i+1:]
	}
	return ext
}

func isAllDigits(s string) bool {
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

func makeParty(net, id, name, username string) channel.Party {
	p := channel.Party{Identifier: id, Name: name}
	if p.Name == "" && username != "" {
		p.Name = "@" + strings.TrimPrefix(username, "@")
	}
	if net == NetWhatsApp && isAllDigits(id) && len(id) >= 7 && len(id) <= 15 {
		p.Phone = "+" + id
	}
	return p
}

func groupFlag(net string, e *event, chat string) bool {
	if bool(e.IsGroup) || bool(e.IsGroup2) {
		return true
	}
	switch net {
	case NetWhatsApp:
		return strings.HasSuffix(chat, "@g.us")
	default:
		switch strings.ToLower(string(e.ChatType)) {
		case "chat", "group", "supergroup", "channel", "groupchat":
			return true
		}
	}
	return false
}

// Parse reads a Wappi webhook. Elements for another profile_id are skipped.
//
//   - incoming_message → inbound; outgoing_message_api (echo of our send) and
//     outgoing_message_phone (typed on the phone) → outbound messages with
//     Sender = our account and ChatID = the customer chat (to/chatId).
//   - delivery_status → EventStatus (pending/sent → sent, delivered, read;
//     undelivered, temporary ban, error → failed).
//   - authorization_status / application_status → EventAuth.
//   - incoming_call → an inbound unsupported message {"type":"call"} so the
//     operator sees that the customer called.
//   - media bodies are base64 thumbnails and are never used as text.
func (a *Adapter) Parse(cfg channel.Config, req channel.Request) ([]channel.Event, error) {
	elems, err := splitEnvelope(req.Body)
	if err != nil {
		return nil, inbox.Wrap(inbox.Invalid, err, "wappi webhook is not valid JSON")
	}
	net := network(cfg)
	profile := cfg.String("profile_id")
	var out []channel.Event
	for _, raw := range elems {
		var e event
		if err := json.Unmarshal(raw, &e); err != nil {
			out = append(out, unreadableElement(raw))
			continue
		}
		p := string(e.ProfileID)
		if p != "" && profile != "" && p != profile {
			continue
		}
		if p == "" {
			p = profile
		}
		if ev, ok := parseEvent(net, p, &e, raw); ok {
			out = append(out, ev)
		}
	}
	return out, nil
}

// unreadableElement is the placeholder of an element that is not an event
// object (a number, a string, an array): it names no profile, chat or
// sender, so it is kept under a hash of its bytes (a redelivery or a
// reprocess collapses onto it) and the store files it under an unknown
// sender.
func unreadableElement(raw json.RawMessage) channel.Event {
	raw = append(json.RawMessage(nil), raw...)
	sum := sha256.Sum256(raw)
	return channel.Event{Type: channel.EventMessage, ExternalID: "raw:" + hex.EncodeToString(sum[:16]),
		Direction: "inbound", Kind: inbox.KindUnsupported, Content: raw, Raw: raw}
}

func parseEvent(net, profile string, e *event, raw json.RawMessage) (channel.Event, bool) {
	ts := parseTime(e.Time, string(e.Timestamp))
	if ts.IsZero() {
		ts = parseTime(e.Timestamp, "")
	}
	switch strings.ToLower(string(e.WhType)) {
	case "delivery_status":
		return statusEvent(net, profile, e, ts, raw)
	case "authorization_status", "application_status":
		return authEvent(e, ts, raw), true
	case "incoming_call":
		chat := canonChat(net, firstOf(e.ChatID, e.ChatID2, e.From))
		if chat == "" {
			return channel.Event{}, false
		}
		c, _ := json.Marshal(map[string]any{"type": "call", "event": raw})
		id := e.id()
		if id == "" {
			id = "call-" + strconv.FormatInt(ts.Unix(), 10)
		}
		return channel.Event{Type: channel.EventMessage, ExternalID: extKey(net, profile, chat, "call:"+id), ChatID: chat,
			Sender:    makeParty(net, canonChat(net, string(e.From)), firstOf(e.SenderName, e.ContactName), string(e.Username)),
			Direction: "inbound", Kind: inbox.KindUnsupported, Text: "", Content: c, Timestamp: ts, Raw: raw}, true
	}
	return messageEvent(net, profile, e, ts, raw)
}

var statusMap = map[string]string{
	"pending": inbox.MsgSent, "sent": inbox.MsgSent, "server": inbox.MsgSent, "server_ack": inbox.MsgSent,
	"delivered": inbox.MsgDelivered, "delivery_ack": inbox.MsgDelivered,
	"read": inbox.MsgRead, "played": inbox.MsgRead, "viewed": inbox.MsgRead,
	"undelivered": inbox.MsgFailed, "temporary ban": inbox.MsgFailed, "temporary_ban": inbox.MsgFailed,
	"error": inbox.MsgFailed, "failed": inbox.MsgFailed,
}

func statusEvent(net, profile string, e *event, ts time.Time, raw json.RawMessage) (channel.Event, bool) {
	status := strings.ToLower(strings.TrimSpace(string(e.Status)))
	st, ok := statusMap[status]
	chat := canonChat(net, firstOf(e.ChatID2, e.ChatID, e.To))
	target := extKey(net, profile, chat, e.id())
	if !ok || target == "" {
		return channel.Event{}, false
	}
	ev := channel.Event{Type: channel.EventStatus, ExternalID: target + ":" + status, TargetID: target, ChatID: chat,
		Direction: "outbound", Status: st, Raw: raw}
	if st == inbox.MsgFailed {
		ev.Error = status
		if d := string(e.Detail); d != "" {
			ev.Error += ": " + d
		}
	}
	ev.IsGroup = groupFlag(net, e, chat)
	ev.Timestamp = ts
	return ev, true
}

// AuthStateOf maps Wappi's words for a profile state to authorized|unauthorized|pending.
func AuthStateOf(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "authorized", "authorised", "online", "open", "connected", "true", "1", "ok", "auth_success", "loggedin", "logged_in", "ready":
		return "authorized"
	case "unauthorized", "not authorized", "not_authorized", "offline", "close", "closed", "disconnected", "logout",
		"logged_out", "false", "0", "conflict", "banned":
		return "unauthorized"
	case "qr", "pending", "loading", "opening", "waiting", "connecting", "2fa", "waiting for code", "scanned", "syncing":
		return "pending"
	case "":
		return "unknown"
	}
	return strings.ToLower(strings.TrimSpace(s))
}

func authEvent(e *event, ts time.Time, raw json.RawMessage) channel.Event {
	detail := firstOf(e.Status, e.AppStatus, flexString(e.bodyText()), e.Detail)
	state := AuthStateOf(detail)
	if e.Authorized != "" {
		state = AuthStateOf(string(e.Authorized))
		if detail == "" {
			detail = "authorized=" + string(e.Authorized)
		}
	}
	ev := channel.Event{Type: channel.EventAuth, AuthState: state, AuthDetail: detail, Raw: raw}
	ev.Timestamp = ts
	return ev
}

func mediaKind(t string) string {
	switch t {
	case "image", "photo":
		return inbox.KindImage
	case "video", "gif", "video_note", "round":
		return inbox.KindVideo
	case "ptt", "voice":
		return inbox.KindVoice
	case "audio":
		return inbox.KindAudio
	case "document", "file":
		return inbox.KindDocument
	case "sticker":
		return inbox.KindSticker
	}
	return ""
}

var defaultMime = map[string]string{
	inbox.KindImage: "image/jpeg", inbox.KindVideo: "video/mp4", inbox.KindVoice: "audio/ogg; codecs=opus",
	inbox.KindAudio: "audio/mpeg", inbox.KindDocument: "application/octet-stream", inbox.KindSticker: "image/webp",
}

func messageEvent(net, profile string, e *event, ts time.Time, raw json.RawMessage) (channel.Event, bool) {
	wh := strings.ToLower(string(e.WhType))
	outbound := wh == "outgoing_message_api" || wh == "outgoing_message_phone" || bool(e.IsMe) || bool(e.FromMe)
	var chat string
	if outbound {
		chat = canonChat(net, firstOf(e.ChatID, e.ChatID2, e.To))
	} else {
		chat = canonChat(net, firstOf(e.ChatID, e.ChatID2, e.From))
	}
	if chat == "" {
		return channel.Event{}, false
	}
	id := e.id()
	ev := channel.Event{
		Type:       channel.EventMessage,
		ExternalID: extKey(net, profile, chat, id),
		ChatID:     chat,
		Direction:  "inbound",
		Forwarded:  bool(e.IsForwarded),
		Raw:        raw,
	}
	ev.Timestamp = ts
	ev.IsGroup = groupFlag(net, e, chat)
	name := firstOf(e.SenderName, e.SenderName2, e.ContactName)
	from := canonChat(net, string(e.From))
	if outbound {
		ev.Direction = "outbound"
		ev.Sender = channel.Party{Identifier: from}
		if !ev.IsGroup {
			ev.Recipient = makeParty(net, chat, string(e.ContactName), string(e.Username))
		}
	} else {
		if from == "" {
			from = chat
		}
		ev.Sender = makeParty(net, from, name, string(e.Username))
		if !ev.IsGroup && net == NetWhatsApp && from == chat && ev.Sender.AvatarURL == "" {
			if pic := string(e.Picture); strings.HasPrefix(pic, "http") {
				ev.Sender.AvatarURL = pic
			}
		}
	}
	if ev.ExternalID == "" {
		ev.ExternalID = extKey(net, profile, chat, "t"+strconv.FormatInt(ev.Timestamp.UnixNano(), 10)+":"+from)
	}
	if st := e.stanza(); st != "" && (bool(e.IsReply) || bool(e.IsReply2)) {
		ev.ReplyToID = extKey(net, profile, chat, st)
	}

	typ := strings.ToLower(string(e.Type))
	switch {
	case typ == "e2e_notification" || typ == "notification" || typ == "notification_template" || typ == "protocol" || typ == "call_log":
		return channel.Event{}, false // WhatsApp system stanzas: nothing to show
	case typ == "gp2" || typ == "group_notification":
		// Group participants/subject changed; titles are not in webhooks, so
		// only signal the change (the pipeline may refresh via {p}/sync/chats/get).
		return channel.Event{Type: channel.EventGroupInfo, ExternalID: ev.ExternalID, ChatID: chat, IsGroup: true,
			Timestamp: ev.Timestamp, Raw: raw}, true
	case typ == "reaction":
		ev.Type = channel.EventReaction
		ev.Emoji = e.bodyText()
		ev.TargetID = extKey(net, profile, chat, e.stanza())
		ev.ReplyToID = ""
		if ev.TargetID == "" {
			return channel.Event{}, false
		}
		return ev, true
	case typ == "revoked" || typ == "deleted" || bool(e.IsDeleted):
		ev.Type = channel.EventDelete
		target := e.stanza()
		if target == "" {
			target = id
		}
		ev.TargetID = extKey(net, profile, chat, target)
		ev.ExternalID = ev.TargetID + ":delete"
		ev.ReplyToID = ""
		return ev, true
	}

	switch {
	case typ == "chat" || typ == "text" || (typ == "" && e.bodyText() != ""):
		ev.Kind = inbox.KindText
		ev.Text = e.bodyText()
	case mediaKind(typ) != "":
		kind := mediaKind(typ)
		mime := firstOf(e.MimeType, e.MimeType2)
		if mime == "" {
			mime = defaultMime[kind]
		}
		m := channel.Media{Kind: kind, MimeType: mime, Filename: firstOf(e.FileName, e.FileName2), Caption: string(e.Caption)}
		if mi := e.mediaInfo(); mi != nil {
			if d, err := strconv.ParseFloat(string(mi.Duration), 64); err == nil && d > 0 {
				m.DurationMS = int64(d * 1000)
			}
			m.Width, _ = strconv.Atoi(string(mi.Width))
			m.Height, _ = strconv.Atoi(string(mi.Height))
			m.Size, _ = strconv.ParseInt(string(mi.Size), 10, 64)
		}
		// ProviderRef: WhatsApp → the message id (media/download gives file_b64
		// ~20 days); Telegram/MAX → the signed file_link when present.
		m.ProviderRef = id
		if link := string(e.FileLink); link != "" && (net != NetWhatsApp || id == "") {
			m.ProviderRef = link
		}
		ev.Kind = kind
		ev.Text = string(e.Caption) // never the body: it is a base64 thumbnail
		ev.Attachments = []channel.Media{m}
	case typ == "location":
		ev.Kind = inbox.KindLocation
		ev.Location = parseLocation(e)
		if ev.Location == nil {
			ev.Kind = inbox.KindUnsupported
			ev.Content = raw
		}
	case typ == "vcard" || typ == "multi_vcard" || typ == "contact":
		ev.Kind = inbox.KindContacts
		card := parseVCard(e.bodyText())
		ev.Content, _ = json.Marshal(map[string]any{"contacts": []any{card}})
		ev.Text, _ = card["name"].(string)
	case typ == "buttons" || typ == "list" || typ == "buttons_response" || typ == "list_response" || typ == "template_button_reply" || typ == "interactive":
		ev.Kind = inbox.KindInteractive
		ev.Text = firstOf(flexString(e.bodyText()), e.Caption)
		ev.Content = raw
	default: // poll, unknown
		ev.Kind = inbox.KindUnsupported
		ev.Content = raw
		ev.Text = string(e.Caption)
	}
	if bool(e.IsEdited) {
		ev.Type = channel.EventEdit
		ev.TargetID = ev.ExternalID
	}
	return ev, true
}

func parseLocation(e *event) *inbox.Location {
	lat, lng := firstOf(e.Latitude, e.Lat), firstOf(e.Longitude, e.Lng)
	if lat == "" || lng == "" {
		b := bytes.TrimSpace(e.Body)
		if len(b) > 0 && b[0] == '{' {
			var o struct {
				Latitude  flexString `json:"latitude"`
				Longitude flexString `json:"longitude"`
				Lat       flexString `json:"lat"`
				Lng       flexString `json:"lng"`
			}
			if json.Unmarshal(b, &o) == nil {
				lat, lng = firstOf(o.Latitude, o.Lat), firstOf(o.Longitude, o.Lng)
			}
		} else if s := e.bodyText(); strings.Count(s, ",") == 1 {
			lat, lng, _ = strings.Cut(s, ",")
		}
	}
	la, err1 := strconv.ParseFloat(strings.TrimSpace(lat), 64)
	lo, err2 := strconv.ParseFloat(strings.TrimSpace(lng), 64)
	if err1 != nil || err2 != nil || la < -90 || la > 90 || lo < -180 || lo > 180 {
		return nil
	}
	return &inbox.Location{Latitude: la, Longitude: lo, Name: string(e.Caption)}
}

// parseVCard extracts FN and TEL lines from a vCard.
func parseVCard(v string) map[string]any {
	card := map[string]any{"name": "", "phones": []string{}}
	var phones []string
	for _, line := range strings.Split(strings.ReplaceAll(v, "\r\n", "\n"), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		base, _, _ := strings.Cut(strings.ToUpper(key), ";")
		if i := strings.LastIndexByte(base, '.'); i >= 0 { // item1.TEL
			base = base[i+1:]
		}
		switch base {
		case "FN":
			card["name"] = strings.TrimSpace(val)
		case "TEL":
			phones = append(phones, strings.TrimSpace(val))
		}
	}
	if phones != nil {
		card["phones"] = phones
	}
	if v != "" {
		card["vcard"] = v
	}
	return card
}
