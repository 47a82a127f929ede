package telegramsim

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/parleyhq/parley/internal/providersim/webhook"
)

// Chat is a Telegram chat. Supergroup ids look like -1001234567890.
type Chat struct {
	ID    int64
	Type  string // private|group|supergroup|channel
	Title string
}

// User is a Telegram user.
type User struct {
	ID        int64
	FirstName string
	LastName  string
	Username  string
	IsBot     bool
}

// Private returns the private chat with u.
func Private(u User) Chat { return Chat{ID: u.ID, Type: "private"} }

func (c Chat) json() map[string]any {
	m := map[string]any{"id": c.ID, "type": c.Type}
	if c.Title != "" {
		m["title"] = c.Title
	}
	return m
}

func (u User) json() map[string]any {
	m := map[string]any{"id": u.ID, "is_bot": u.IsBot, "first_name": u.FirstName}
	if u.LastName != "" {
		m["last_name"] = u.LastName
	}
	if u.Username != "" {
		m["username"] = u.Username
	}
	return m
}

// Msg describes one message for the update builders.
type Msg struct {
	UpdateID  int64
	MessageID int64
	Chat      Chat
	From      *User // nil for channel posts
	Date      time.Time
	Text      string
	ReplyTo   int64          // message_id quoted, 0 = none
	Extra     map[string]any // merged into the message object (photo, voice, caption…)
}

func (m Msg) object() map[string]any {
	date := m.Date
	if date.IsZero() {
		date = time.Unix(1700000000, 0)
	}
	o := map[string]any{"message_id": m.MessageID, "date": date.Unix(), "chat": m.Chat.json()}
	if m.From != nil {
		o["from"] = m.From.json()
	} else {
		o["sender_chat"] = m.Chat.json()
	}
	if m.Text != "" {
		o["text"] = m.Text
	}
	if m.ReplyTo != 0 {
		o["reply_to_message"] = map[string]any{"message_id": m.ReplyTo, "date": date.Unix() - 60, "chat": m.Chat.json()}
	}
	for k, v := range m.Extra {
		o[k] = v
	}
	return o
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // builders only marshal maps of plain values
	}
	return b
}

// MessageUpdate builds {"update_id", "message"} (or "channel_post" for channel chats).
func MessageUpdate(m Msg) []byte {
	key := "message"
	if m.Chat.Type == "channel" {
		key = "channel_post"
	}
	return mustJSON(map[string]any{"update_id": m.UpdateID, key: m.object()})
}

// EditUpdate builds an edited_message with edit_date.
func EditUpdate(m Msg, editDate time.Time) []byte {
	o := m.object()
	o["edit_date"] = editDate.Unix()
	key := "edited_message"
	if m.Chat.Type == "channel" {
		key = "edited_channel_post"
	}
	return mustJSON(map[string]any{"update_id": m.UpdateID, key: o})
}

// PhotoExtra returns the photo array (three ascending sizes) and caption.
func PhotoExtra(fileID, caption string) map[string]any {
	e := map[string]any{"photo": []any{
		map[string]any{"file_id": fileID + "_s", "file_unique_id": "AQADs", "width": 90, "height": 67, "file_size": 1200},
		map[string]any{"file_id": fileID + "_m", "file_unique_id": "AQADm", "width": 320, "height": 240, "file_size": 15000},
		map[string]any{"file_id": fileID, "file_unique_id": "AQADx", "width": 1280, "height": 960, "file_size": 98000},
	}}
	if caption != "" {
		e["caption"] = caption
	}
	return e
}

// VoiceExtra returns a voice note.
func VoiceExtra(fileID string, seconds int) map[string]any {
	return map[string]any{"voice": map[string]any{"file_id": fileID, "file_unique_id": "AwADv", "duration": seconds,
		"mime_type": "audio/ogg", "file_size": 4321}}
}

// DocumentExtra returns a document.
func DocumentExtra(fileID, name, mime string) map[string]any {
	return map[string]any{"document": map[string]any{"file_id": fileID, "file_unique_id": "BQADd", "file_name": name,
		"mime_type": mime, "file_size": 2048}}
}

// ReactionUpdate builds a message_reaction update (old → new emoji sets).
func ReactionUpdate(updateID int64, chat Chat, u User, messageID int64, date time.Time, oldEmoji, newEmoji []string) []byte {
	list := func(es []string) []any {
		out := []any{}
		for _, e := range es {
			out = append(out, map[string]any{"type": "emoji", "emoji": e})
		}
		return out
	}
	return mustJSON(map[string]any{"update_id": updateID, "message_reaction": map[string]any{
		"chat": chat.json(), "message_id": messageID, "user": u.json(), "date": date.Unix(),
		"old_reaction": list(oldEmoji), "new_reaction": list(newEmoji)}})
}

// CallbackUpdate builds a callback_query (inline button tap) on one of the bot's messages.
func CallbackUpdate(updateID int64, queryID string, u User, chat Chat, messageID int64, data string) []byte {
	return mustJSON(map[string]any{"update_id": updateID, "callback_query": map[string]any{
		"id": queryID, "from": u.json(), "chat_instance": "-8123", "data": data,
		"message": map[string]any{"message_id": messageID, "date": 1700000000, "chat": chat.json(), "text": "Pick one"}}})
}

// DeliverOptions bound the retries of Deliver.
type DeliverOptions struct {
	Client      *http.Client
	MaxAttempts int           // default 5
	Backoff     time.Duration // first wait, doubled each time; default 50ms
	MaxBackoff  time.Duration // default 2s
}

// Deliver POSTs one update to url with the secret-token header, as Telegram
// does, retrying non-2xx answers and network errors with bounded backoff.
func Deliver(ctx context.Context, url, secret string, update []byte) error {
	return DeliverWith(ctx, DeliverOptions{}, url, secret, update)
}

// Headers returns the headers Telegram sends with an update: JSON, and the
// secret token when the webhook was set with one.
func Headers(secret string) http.Header {
	return webhook.JSONHeader("X-Telegram-Bot-Api-Secret-Token", secret)
}

// DeliverWith is Deliver with explicit options.
func DeliverWith(ctx context.Context, o DeliverOptions, url, secret string, update []byte) error {
	r := webhook.Retry{MaxAttempts: o.MaxAttempts, Backoff: o.Backoff, MaxBackoff: o.MaxBackoff}.
		Or(webhook.Retry{MaxAttempts: 5, Backoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second})
	n, err := webhook.Post(ctx, o.Client, url, Headers(secret), update, r)
	return webhook.Failed(ctx, n, err, "telegramsim: delivery failed after %d attempts: %w")
}
