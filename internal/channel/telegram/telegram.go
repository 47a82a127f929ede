// Package telegram is the Telegram Bot API channel adapter: webhook updates in
// (secret-token header), Bot API calls out.
package telegram

import (
	"crypto/subtle"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// Kind is the channel kind this adapter serves.
const Kind = "telegram"

// DefaultBaseURL is the Bot API host.
const DefaultBaseURL = "https://api.telegram.org"

// Limits of the Bot API (UTF-16 code units after entity parsing).
const (
	MaxTextLen    = 4096
	MaxCaptionLen = 1024
)

// SecretHeader carries the webhook secret_token.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// Adapter implements channel.Adapter for Telegram bots.
type Adapter struct{}

var _ channel.Adapter = (*Adapter)(nil)
var _ channel.Answerer = (*Adapter)(nil)

// New returns the Telegram adapter.
func New() *Adapter { return &Adapter{} }

// Kind returns "telegram".
func (a *Adapter) Kind() string { return Kind }

// Verify compares X-Telegram-Bot-Api-Secret-Token with webhook_secret in constant time.
// A channel without a webhook_secret accepts nothing.
func (a *Adapter) Verify(cfg channel.Config, req channel.Request) error {
	want := cfg.Secret("webhook_secret")
	got := req.Header.Get(SecretHeader)
	if want == "" {
		return inbox.Errorf(inbox.Unauthorized, "telegram channel has no webhook_secret configured")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return inbox.Errorf(inbox.Unauthorized, "invalid telegram secret token")
	}
	return nil
}

// Handshake: Telegram has none.
func (a *Adapter) Handshake(cfg channel.Config, req channel.Request) (int, string, bool) {
	return 0, "", false
}

// Ack answers with an empty JSON object (any 2xx works; a method in the body would be executed).
func (a *Adapter) Ack() (string, []byte) { return "application/json", []byte("{}") }

// Rules of a Telegram bot chat.
func (a *Adapter) Rules(cfg channel.Config) channel.Rules {
	return channel.Rules{
		MaxTextLen:    MaxTextLen,
		TextLenUnit:   "utf16",
		SplitLongText: true,
		Media:         true,
		VoiceMime:     "audio/ogg; codecs=opus",
		// Files go by URL (Send), so the Bot API's by-URL caps apply
		// (core.telegram.org/bots/api#sending-files): photos 5 MB, other
		// files 20 MB. providers.md's 50 MB (photos 10 MB) is for uploads.
		MaxMediaSize:  20 << 20,
		MaxMediaSizes: map[string]int64{inbox.KindImage: 5 << 20},
	}
}

var (
	tokenRe  = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]+$`)
	secretRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
)

// ValidateConfig checks bot_token and webhook_secret (the effective secrets of the channel).
func (a *Adapter) ValidateConfig(config map[string]any, secrets map[string]string) error {
	var v inbox.Validator
	v.Check(tokenRe.MatchString(secrets["bot_token"]), "bot_token", "must look like <bot id>:<secret> as given by @BotFather")
	v.Check(secretRe.MatchString(secrets["webhook_secret"]), "webhook_secret", "must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
	if raw, ok := config["api_base_url"]; ok && raw != nil {
		s, _ := raw.(string)
		v.Check(s == "" || strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"), "api_base_url", "must be an http(s) URL")
	}
	return v.Err()
}

// botID is the numeric prefix of the token ("" when the token is malformed).
func botID(token string) string {
	id, _, ok := strings.Cut(token, ":")
	if !ok {
		return ""
	}
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return ""
	}
	return id
}

// ---- wire types (core.telegram.org/bots/api) ----

type update struct {
	UpdateID             int64            `json:"update_id"`
	Message              *message         `json:"message"`
	EditedMessage        *message         `json:"edited_message"`
	ChannelPost          *message         `json:"channel_post"`
	EditedChannelPost    *message         `json:"edited_channel_post"`
	BusinessMessage      *message         `json:"business_message"`
	EditedBusinessMsg    *message         `json:"edited_business_message"`
	MessageReaction      *messageReaction `json:"message_reaction"`
	MessageReactionCount json.RawMessage  `json:"message_reaction_count"`
	CallbackQuery        *callbackQuery   `json:"callback_query"`
}

type user struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Username  string `json:"username"`
}

type chat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title"`
	Username  string `json:"username"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

type photoSize struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	FileSize     int64  `json:"file_size"`
}

type file struct {
	FileID     string `json:"file_id"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	Length     int    `json:"length"` // video_note diameter
	Duration   int64  `json:"duration"`
	MimeType   string `json:"mime_type"`
	FileName   string `json:"file_name"`
	FileSize   int64  `json:"file_size"`
	Title      string `json:"title"`
	Performer  string `json:"performer"`
	Emoji      string `json:"emoji"`
	IsAnimated bool   `json:"is_animated"`
	IsVideo    bool   `json:"is_video"`
}

type location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

type venue struct {
	Location location `json:"location"`
	Title    string   `json:"title"`
	Address  string   `json:"address"`
}

type contact struct {
	PhoneNumber string `json:"phone_number"`
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	UserID      int64  `json:"user_id"`
	VCard       string `json:"vcard"`
}

type message struct {
	MessageID      int64       `json:"message_id"`
	Date           int64       `json:"date"`
	EditDate       int64       `json:"edit_date"`
	Chat           chat        `json:"chat"`
	From           *user       `json:"from"`
	SenderChat     *chat       `json:"sender_chat"`
	Text           string      `json:"text"`
	Caption        string      `json:"caption"`
	Photo          []photoSize `json:"photo"`
	Video          *file       `json:"video"`
	Voice          *file       `json:"voice"`
	Audio          *file       `json:"audio"`
	Document       *file       `json:"document"`
	Sticker        *file       `json:"sticker"`
	Animation      *file       `json:"animation"`
	VideoNote      *file       `json:"video_note"`
	Location       *location   `json:"location"`
	Venue          *venue      `json:"venue"`
	Contact        *contact    `json:"contact"`
	ReplyToMessage *struct {
		MessageID int64 `json:"message_id"`
	} `json:"reply_to_message"`
	ForwardOrigin   json.RawMessage `json:"forward_origin"`
	ForwardDate     int64           `json:"forward_date"`
	NewChatTitle    string          `json:"new_chat_title"`
	NewChatMembers  []user          `json:"new_chat_members"`
	LeftChatMember  *user           `json:"left_chat_member"`
	NewChatPhoto    []photoSize     `json:"new_chat_photo"`
	GroupChatCreate bool            `json:"group_chat_created"`
}

type reactionType struct {
	Type          string `json:"type"`
	Emoji         string `json:"emoji"`
	CustomEmojiID string `json:"custom_emoji_id"`
}

func (r reactionType) key() string {
	switch r.Type {
	case "emoji":
		return r.Emoji
	case "custom_emoji":
		return "custom_emoji:" + r.CustomEmojiID
	case "paid":
		return "paid"
	}
	return r.Type
}

type messageReaction struct {
	Chat        chat           `json:"chat"`
	MessageID   int64          `json:"message_id"`
	User        *user          `json:"user"`
	ActorChat   *chat          `json:"actor_chat"`
	Date        int64          `json:"date"`
	OldReaction []reactionType `json:"old_reaction"`
	NewReaction []reactionType `json:"new_reaction"`
}

type callbackQuery struct {
	ID              string   `json:"id"`
	From            user     `json:"from"`
	Message         *message `json:"message"`
	InlineMessageID string   `json:"inline_message_id"`
	Data            string   `json:"data"`
	GameShortName   string   `json:"game_short_name"`
}

func unixTime(s int64) time.Time {
	if s <= 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

func id64(n int64) string { return strconv.FormatInt(n, 10) }

// msgKey is the dedup/external id of a message: "<chat.id>:<message_id>".
func msgKey(chatID, msgID int64) string { return id64(chatID) + ":" + id64(msgID) }
