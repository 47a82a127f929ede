package telegram

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// Parse turns one webhook Update into events.
//
//   - message / channel_post / business_message → EventMessage; our own bot's
//     messages (from.id == bot id) are outbound.
//   - edited_* → EventEdit with ExternalID = TargetID = "<chat.id>:<message_id>".
//   - message_reaction → one EventReaction per emoji removed (Emoji "", the
//     removed emoji in Content {"removed": "…"}) then one per emoji added.
//   - message_reaction_count (anonymous counts, no sender) → ignored: no event.
//   - callback_query → EventMessage of kind interactive (Text = callback data).
//   - new_chat_members / left_chat_member / new_chat_title… → EventGroupInfo
//     (joined members as Participants).
//   - anything else, or an update with a field of an unexpected type →
//     EventMessage of kind unsupported carrying the raw update, ExternalID
//     "update:<update_id>", from the user or chat it names.
func (a *Adapter) Parse(cfg channel.Config, req channel.Request) ([]channel.Event, error) {
	body := bytes.TrimSpace(req.Body)
	var u update
	raw := json.RawMessage(body)
	if err := json.Unmarshal(body, &u); err != nil {
		// A field of an unexpected type: the update is still named by its
		// update_id when that can be read, so keep it as a placeholder.
		var probe struct {
			UpdateID *int64 `json:"update_id"`
		}
		if json.Unmarshal(body, &probe) != nil || probe.UpdateID == nil {
			return nil, inbox.Wrap(inbox.Invalid, err, "telegram update is not valid JSON")
		}
		return []channel.Event{otherUpdate(*probe.UpdateID, body, botID(cfg.Secret("bot_token")))}, nil
	}
	bot := botID(cfg.Secret("bot_token"))
	switch {
	case u.Message != nil:
		return []channel.Event{messageEvent(u.Message, bot, false, raw)}, nil
	case u.ChannelPost != nil:
		return []channel.Event{messageEvent(u.ChannelPost, bot, false, raw)}, nil
	case u.BusinessMessage != nil:
		return []channel.Event{messageEvent(u.BusinessMessage, bot, false, raw)}, nil
	case u.EditedMessage != nil:
		return []channel.Event{messageEvent(u.EditedMessage, bot, true, raw)}, nil
	case u.EditedChannelPost != nil:
		return []channel.Event{messageEvent(u.EditedChannelPost, bot, true, raw)}, nil
	case u.EditedBusinessMsg != nil:
		return []channel.Event{messageEvent(u.EditedBusinessMsg, bot, true, raw)}, nil
	case u.MessageReaction != nil:
		return reactionEvents(u.MessageReaction, bot, raw), nil
	case len(u.MessageReactionCount) > 0:
		return nil, nil
	case u.CallbackQuery != nil:
		return []channel.Event{callbackEvent(u.CallbackQuery, u.UpdateID, raw)}, nil
	}
	return []channel.Event{otherUpdate(u.UpdateID, body, bot)}, nil
}

// otherUpdate is the placeholder of an update this adapter does not read
// (poll_answer, inline_query, chosen_inline_result, chat_member, ...):
// named by its update_id, so a redelivery is recognised, and from the user
// or chat it names (whose conversation it then lands in); outbound when that
// is our own bot.
func otherUpdate(updateID int64, body []byte, bot string) channel.Event {
	raw := json.RawMessage(body)
	ev := channel.Event{
		Type:       channel.EventMessage,
		ExternalID: "update:" + id64(updateID),
		Direction:  "inbound",
		Kind:       inbox.KindUnsupported,
		Content:    raw,
		Raw:        raw,
	}
	inner := updateObject(body)
	if inner.Chat != nil && inner.Chat.ID != 0 {
		ev.ChatID = id64(inner.Chat.ID)
		ev.IsGroup = isGroupChat(inner.Chat.Type)
		if ev.IsGroup {
			ev.GroupTitle = inner.Chat.Title
		}
	}
	switch {
	case inner.From != nil && inner.From.ID != 0:
		ev.Sender = userParty(inner.From)
	case inner.User != nil && inner.User.ID != 0:
		ev.Sender = userParty(inner.User)
	case inner.VoterChat != nil && inner.VoterChat.ID != 0:
		ev.Sender = chatParty(inner.VoterChat)
	case inner.ActorChat != nil && inner.ActorChat.ID != 0:
		ev.Sender = chatParty(inner.ActorChat)
	}
	if ev.ChatID == "" {
		// No chat (inline queries, poll answers): the user's private chat.
		ev.ChatID = ev.Sender.Identifier
	}
	if bot != "" && ev.Sender.Identifier == bot {
		ev.Direction = "outbound"
	}
	ev.Timestamp = unixTime(inner.Date)
	return ev
}

// someUpdate is what an update of any type may say about who and where.
type someUpdate struct {
	Chat      *chat `json:"chat"`
	From      *user `json:"from"`       // inline_query, chosen_inline_result, chat_member, shipping_query...
	User      *user `json:"user"`       // poll_answer, business_connection, message_reaction
	VoterChat *chat `json:"voter_chat"` // poll_answer of an anonymous chat
	ActorChat *chat `json:"actor_chat"`
	Date      int64 `json:"date"`
}

// updateObject reads the object of an update's one type field
// ({"update_id":…,"<type>":{…}}) loosely: a field of an unexpected type is
// left out. Keys are taken in order so the result is deterministic.
func updateObject(body []byte) someUpdate {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return someUpdate{}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "update_id" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		var fields map[string]json.RawMessage
		if json.Unmarshal(m[k], &fields) != nil {
			continue
		}
		var out someUpdate
		looseInto(fields, "chat", &out.Chat)
		looseInto(fields, "from", &out.From)
		looseInto(fields, "user", &out.User)
		looseInto(fields, "voter_chat", &out.VoterChat)
		looseInto(fields, "actor_chat", &out.ActorChat)
		looseInto(fields, "date", &out.Date)
		return out
	}
	return someUpdate{}
}

// looseInto decodes fields[key] into v; a value of another type leaves v as it was.
func looseInto[T any](fields map[string]json.RawMessage, key string, v *T) {
	b, ok := fields[key]
	if !ok {
		return
	}
	var x T
	if json.Unmarshal(b, &x) == nil {
		*v = x
	}
}

func userParty(u *user) channel.Party {
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if name == "" && u.Username != "" {
		name = "@" + u.Username
	}
	return channel.Party{Identifier: id64(u.ID), Name: name, IsBot: u.IsBot}
}

func chatParty(c *chat) channel.Party {
	name := c.Title
	if name == "" {
		name = strings.TrimSpace(c.FirstName + " " + c.LastName)
	}
	if name == "" && c.Username != "" {
		name = "@" + c.Username
	}
	return channel.Party{Identifier: id64(c.ID), Name: name}
}

func isGroupChat(t string) bool { return t == "group" || t == "supergroup" }

func messageEvent(m *message, bot string, edited bool, raw json.RawMessage) channel.Event {
	ev := channel.Event{
		Type:       channel.EventMessage,
		ExternalID: msgKey(m.Chat.ID, m.MessageID),
		ChatID:     id64(m.Chat.ID),
		IsGroup:    isGroupChat(m.Chat.Type),
		Direction:  "inbound",
		Timestamp:  unixTime(m.Date),
		Raw:        raw,
	}
	if ev.IsGroup {
		ev.GroupTitle = m.Chat.Title
	}
	switch {
	case m.SenderChat != nil:
		// Channel posts, anonymous group admins, linked channels.
		ev.Sender = chatParty(m.SenderChat)
	case m.From != nil:
		ev.Sender = userParty(m.From)
	default:
		ev.Sender = chatParty(&m.Chat)
	}
	if m.From != nil && bot != "" && id64(m.From.ID) == bot && m.SenderChat == nil {
		ev.Direction = "outbound"
		if !ev.IsGroup {
			ev.Recipient = chatParty(&m.Chat)
		}
	}
	if m.ReplyToMessage != nil && m.ReplyToMessage.MessageID != 0 {
		ev.ReplyToID = msgKey(m.Chat.ID, m.ReplyToMessage.MessageID)
	}
	ev.Forwarded = len(m.ForwardOrigin) > 0 || m.ForwardDate != 0
	if edited {
		ev.Type = channel.EventEdit
		ev.TargetID = ev.ExternalID
		if m.EditDate > 0 {
			ev.Timestamp = unixTime(m.EditDate)
		}
	}
	fillContent(&ev, m, bot, raw)
	return ev
}

func fillContent(ev *channel.Event, m *message, bot string, raw json.RawMessage) {
	ev.Kind = inbox.KindText
	ev.Text = m.Text
	media := func(kind string, f *file, mime string) {
		if f.MimeType != "" {
			mime = f.MimeType
		}
		w, h := f.Width, f.Height
		if f.Length > 0 {
			w, h = f.Length, f.Length
		}
		ev.Kind = kind
		ev.Text = m.Caption
		ev.Attachments = []channel.Media{{
			Kind: kind, MimeType: mime, Filename: f.FileName, Size: f.FileSize,
			ProviderRef: f.FileID, DurationMS: f.Duration * 1000, Width: w, Height: h,
			Caption: m.Caption,
		}}
	}
	switch {
	case len(m.Photo) > 0:
		p := m.Photo[len(m.Photo)-1] // sizes ascend: the last is the largest
		ev.Kind = inbox.KindImage
		ev.Text = m.Caption
		ev.Attachments = []channel.Media{{
			Kind: inbox.KindImage, MimeType: "image/jpeg", Size: p.FileSize, ProviderRef: p.FileID,
			Width: p.Width, Height: p.Height, Caption: m.Caption,
		}}
	case m.Animation != nil: // also carries a document: check first
		media(inbox.KindVideo, m.Animation, "video/mp4")
	case m.Video != nil:
		media(inbox.KindVideo, m.Video, "video/mp4")
	case m.VideoNote != nil:
		media(inbox.KindVideo, m.VideoNote, "video/mp4")
	case m.Voice != nil:
		media(inbox.KindVoice, m.Voice, "audio/ogg")
	case m.Audio != nil:
		if m.Audio.FileName == "" && m.Audio.Title != "" {
			m.Audio.FileName = strings.TrimSpace(m.Audio.Performer + " - " + m.Audio.Title)
			m.Audio.FileName = strings.TrimPrefix(m.Audio.FileName, "- ")
		}
		media(inbox.KindAudio, m.Audio, "audio/mpeg")
	case m.Sticker != nil:
		mime := "image/webp"
		if m.Sticker.IsAnimated {
			mime = "application/x-tgsticker"
		} else if m.Sticker.IsVideo {
			mime = "video/webm"
		}
		media(inbox.KindSticker, m.Sticker, mime)
		if ev.Text == "" {
			ev.Text = m.Sticker.Emoji
		}
	case m.Document != nil:
		media(inbox.KindDocument, m.Document, "application/octet-stream")
	case m.Venue != nil:
		ev.Kind = inbox.KindLocation
		ev.Location = &inbox.Location{Latitude: m.Venue.Location.Latitude, Longitude: m.Venue.Location.Longitude,
			Name: m.Venue.Title, Address: m.Venue.Address}
	case m.Location != nil:
		ev.Kind = inbox.KindLocation
		ev.Location = &inbox.Location{Latitude: m.Location.Latitude, Longitude: m.Location.Longitude}
	case m.Contact != nil:
		ev.Kind = inbox.KindContacts
		name := strings.TrimSpace(m.Contact.FirstName + " " + m.Contact.LastName)
		card := map[string]any{"name": name, "phones": []string{m.Contact.PhoneNumber}}
		if m.Contact.VCard != "" {
			card["vcard"] = m.Contact.VCard
		}
		if m.Contact.UserID != 0 {
			card["telegram_user_id"] = id64(m.Contact.UserID)
		}
		ev.Content, _ = json.Marshal(map[string]any{"contacts": []any{card}})
		ev.Text = name
	case m.NewChatTitle != "" || len(m.NewChatMembers) > 0 || m.LeftChatMember != nil || len(m.NewChatPhoto) > 0 || m.GroupChatCreate:
		groupChange(ev, m, bot)
	case m.Text == "":
		// poll, dice, game, story, invoice, other service messages...
		ev.Kind = inbox.KindUnsupported
		ev.Text = m.Caption
		ev.Content = raw
	}
}

// groupChange fills a service message about the group itself: its title
// (from the chat, or the new one) and, for new_chat_members, the members
// who joined (our own bot left out), so they become the conversation's
// participants. Telegram reports deltas, not the member list; a
// left_chat_member is only a signal (the store has no way to remove a
// participant through an event).
func groupChange(ev *channel.Event, m *message, bot string) {
	ev.Type = channel.EventGroupInfo
	ev.Kind = ""
	ev.IsGroup = true
	ev.GroupTitle = m.Chat.Title
	if m.NewChatTitle != "" {
		ev.GroupTitle = m.NewChatTitle
	}
	for i := range m.NewChatMembers {
		u := &m.NewChatMembers[i]
		if u.ID == 0 || (bot != "" && id64(u.ID) == bot) {
			continue
		}
		ev.Participants = append(ev.Participants, userParty(u))
	}
}

func reactionEvents(r *messageReaction, bot string, raw json.RawMessage) []channel.Event {
	var sender channel.Party
	switch {
	case r.User != nil:
		if bot != "" && id64(r.User.ID) == bot {
			return nil // our own reaction
		}
		sender = userParty(r.User)
	case r.ActorChat != nil:
		sender = chatParty(r.ActorChat)
	default:
		return nil
	}
	old := map[string]bool{}
	for _, x := range r.OldReaction {
		old[x.key()] = true
	}
	cur := map[string]bool{}
	for _, x := range r.NewReaction {
		cur[x.key()] = true
	}
	target := msgKey(r.Chat.ID, r.MessageID)
	base := channel.Event{
		Type:      channel.EventReaction,
		ChatID:    id64(r.Chat.ID),
		IsGroup:   isGroupChat(r.Chat.Type),
		Sender:    sender,
		Direction: "inbound",
		TargetID:  target,
		Timestamp: unixTime(r.Date),
		Raw:       raw,
	}
	if base.IsGroup {
		base.GroupTitle = r.Chat.Title
	}
	idBase := target + ":reaction:" + sender.Identifier + ":" + id64(r.Date) + ":"
	var out []channel.Event
	for _, x := range r.OldReaction {
		k := x.key()
		if cur[k] {
			continue
		}
		ev := base
		ev.ExternalID = idBase + "-" + k
		ev.Content, _ = json.Marshal(map[string]string{"removed": k})
		out = append(out, ev)
	}
	for _, x := range r.NewReaction {
		k := x.key()
		if old[k] {
			continue
		}
		ev := base
		ev.ExternalID = idBase + "+" + k
		ev.Emoji = k
		out = append(out, ev)
	}
	return out
}

func callbackEvent(q *callbackQuery, updateID int64, raw json.RawMessage) channel.Event {
	ev := channel.Event{
		Type:       channel.EventMessage,
		ExternalID: "callback:" + q.ID,
		Sender:     userParty(&q.From),
		Direction:  "inbound",
		Kind:       inbox.KindInteractive,
		Text:       q.Data,
		Raw:        raw,
	}
	if q.ID == "" {
		ev.ExternalID = "update:" + id64(updateID)
	}
	ev.ChatID = id64(q.From.ID)
	if q.Message != nil {
		ev.ChatID = id64(q.Message.Chat.ID)
		ev.IsGroup = isGroupChat(q.Message.Chat.Type)
		if ev.IsGroup {
			ev.GroupTitle = q.Message.Chat.Title
		}
		ev.ReplyToID = msgKey(q.Message.Chat.ID, q.Message.MessageID)
	}
	ev.Content, _ = json.Marshal(map[string]string{
		"type": "button_reply", "id": q.Data, "title": q.Data, "callback_query_id": q.ID,
	})
	ev.QueryID = q.ID
	return ev
}
