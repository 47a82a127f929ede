// Package channel defines the adapter contract every provider package
// implements, the normalized events they produce, and the registry.
// Core code never branches on channel kind: it asks the adapter.
package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/inbox"
)

// Config is everything an adapter needs to talk for one channel: the channel's
// config, its decrypted secrets, and those of its provider account if any.
type Config struct {
	ChannelID      string
	WorkspaceID    string
	Kind           string
	Config         map[string]any    // channel config (API.md table)
	Secrets        map[string]string // decrypted channel secrets
	AccountConfig  map[string]any    // provider account config, if any
	AccountSecrets map[string]string // provider account secrets (e.g. wappi api_token)
	WebhookURL     string            // public URL providers call (Twilio signs it)
	HTTPClient     *http.Client      // never nil when called by the pipeline
}

// String reads a string config value ("" when absent or not a string).
func (c Config) String(key string) string {
	if v, ok := c.Config[key].(string); ok {
		return v
	}
	if v, ok := c.AccountConfig[key].(string); ok {
		return v
	}
	return ""
}

// Secret reads a secret from the channel, then the provider account.
func (c Config) Secret(key string) string {
	if v := c.Secrets[key]; v != "" {
		return v
	}
	return c.AccountSecrets[key]
}

// BaseURL returns config.api_base_url (channel, then account) or def.
func (c Config) BaseURL(def string) string {
	if v := c.String("api_base_url"); v != "" {
		return v
	}
	return def
}

// Client returns the HTTP client to use.
func (c Config) Client() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// EventType is the kind of a normalized event.
type EventType string

// Event types.
const (
	EventMessage   EventType = "message"       // a new message (Direction says whose; echoes are outbound)
	EventEdit      EventType = "edit"          // TargetID's text changed to Text
	EventDelete    EventType = "delete"        // TargetID was deleted/revoked
	EventReaction  EventType = "reaction"      // Emoji on TargetID by Sender; Emoji "" removes
	EventStatus    EventType = "status"        // delivery status Status of our message TargetID
	EventRead      EventType = "read"          // the contact read everything we sent up to Watermark (or TargetID)
	EventAuth      EventType = "authorization" // channel authorization state changed (AuthState)
	EventGroupInfo EventType = "group_info"    // group title/avatar/participants changed
	// EventChannelError: the provider reports a problem with the channel
	// itself (not with one message), in Error; it shows in the channel's
	// health as its last error and does not change its authorization.
	EventChannelError EventType = "channel_error"
)

// Party is a person on the provider's side.
type Party struct {
	Identifier string // stable id on this channel: wa_id, PSID, chat id, E.164 number, email...
	Name       string
	Phone      string // E.164 when known
	Email      string
	AvatarURL  string
	IsBot      bool
}

// Media is a file reference as the provider gives it; bytes are fetched lazily
// through Adapter.FetchMedia(ProviderRef).
type Media struct {
	Kind        string // image|audio|voice|video|document|sticker
	MimeType    string
	Filename    string
	Size        int64
	ProviderRef string // media id, file_id, URL...
	DurationMS  int64
	Width       int
	Height      int
	Caption     string
}

// Event is one normalized thing that happened on a channel. One webhook may
// carry many. Fields not relevant to Type are zero.
type Event struct {
	Type EventType

	// ExternalID is the provider's id of this message/event, unique per channel
	// (dedup key). For Telegram "<chat.id>:<message_id>"; for Wappi Telegram/MAX
	// "<profile_id>:<chat>:<id>".
	ExternalID string
	// ChatID identifies the provider conversation: the group id for groups,
	// the contact identifier for direct chats. Events of one ChatID keep order.
	ChatID       string
	IsGroup      bool
	GroupTitle   string // only from chat metadata, never from the sender
	GroupAvatar  string
	Participants []Party // for EventGroupInfo, when the provider lists them

	Sender    Party  // the customer (inbound) or our account (outbound echo)
	Recipient Party  // for outbound echoes: the customer
	Direction string // inbound|outbound

	Kind        string // inbox.Kind*
	Text        string
	Content     json.RawMessage // structured content: contact cards, template, buttons, unsupported raw
	Attachments []Media
	Location    *inbox.Location
	ReplyToID   string // external id of the quoted message
	Forwarded   bool

	TargetID  string // external id the edit/delete/reaction/status/read refers to
	Emoji     string // reaction; "" = removal
	Status    string // inbox.MsgSent|MsgDelivered|MsgRead|MsgFailed
	Error     string // failure reason as the provider words it
	Watermark time.Time

	AuthState  string // EventAuth: authorized|unauthorized|pending|...
	AuthDetail string

	// QueryID is set on an event the provider expects an answer to once it
	// is handled (Telegram's callback_query id: the user's app shows a
	// progress indicator on the pressed button until it is answered); the
	// pipeline calls the adapter's Answerer after applying the event.
	QueryID string

	Timestamp time.Time       // provider time, UTC; zero = receive time
	Raw       json.RawMessage // this event's own piece of the payload
}

// Outgoing is a message to send.
type Outgoing struct {
	MessageID   string // our message id (idempotency key)
	To          string // the contact's identifier on this channel
	ChatID      string // the conversation's provider chat id (groups)
	IsGroup     bool
	Text        string
	Attachments []OutMedia
	ReplyToID   string // external id of the quoted message
	Template    *Template
	Reaction    *OutReaction
	HumanAgent  bool // Meta: send with the HUMAN_AGENT tag (past 24 h, within 7 days)
}

// OutMedia is a file to send. URL is a signed share URL providers can fetch;
// Open reads the bytes for providers that want an upload.
type OutMedia struct {
	Kind     string
	MimeType string
	Filename string
	Size     int64
	URL      string
	Open     func() (io.ReadCloser, error)
}

// Template is a pre-approved message (WhatsApp).
type Template struct {
	Name     string   `json:"name"`
	Language string   `json:"language"`
	Params   []string `json:"params"`
}

// OutReaction reacts to a message; Emoji "" removes our reaction.
type OutReaction struct {
	TargetID string
	Emoji    string
}

// SendResult is the provider's answer to a send. ExternalIDs has several ids
// when the adapter split the text into several provider messages.
type SendResult struct {
	ExternalID  string
	ExternalIDs []string
	Status      string // usually inbox.MsgSent
}

// SendError is a failed send. Retryable errors are retried with backoff;
// RetryAfter, when set, is the provider's requested wait.
type SendError struct {
	Retryable  bool
	Code       string
	Reason     string
	RetryAfter time.Duration
	HTTPStatus int
}

func (e *SendError) Error() string {
	return fmt.Sprintf("send failed (code %s, http %d): %s", e.Code, e.HTTPStatus, e.Reason)
}

// IsRetryable reports whether err is worth retrying (non-SendError errors are: network).
func IsRetryable(err error) bool {
	var se *SendError
	if errors.As(err, &se) {
		return se.Retryable
	}
	return err != nil
}

// ConversationState is what the rules need to know about a conversation.
type ConversationState struct {
	LastInboundAt *time.Time
	IsGroup       bool
	Now           time.Time
}

// Rules are a channel's constraints, checked before a send is queued.
type Rules struct {
	MaxTextLen    int           // 0 = unlimited
	TextLenUnit   string        // "chars" (runes) or "bytes" (UTF-8) or "utf16"
	SplitLongText bool          // long text is split into several messages instead of refused
	ReplyWindow   time.Duration // 0 = none; outside it only templates (or the tag window)
	TagWindow     time.Duration // Meta HUMAN_AGENT window
	Media         bool          // can carry attachments
	Templates     bool          // supports templates
	VoiceMime     string        // required voice note format, e.g. "audio/ogg; codecs=opus"
	// MaxMediaSize caps one file of a kind MaxMediaSizes does not list
	// (0 = no cap).
	MaxMediaSize int64
	// MaxMediaSizes caps one file per attachment kind (inbox.Kind*):
	// providers take smaller images than documents. See MediaLimit.
	MaxMediaSizes map[string]int64
	// MaxMediaTotal caps the files of one message together (Twilio MMS:
	// 5 MB); 0 = no cap.
	MaxMediaTotal int64
	// MaxAttachments caps the files of one message (Twilio MMS: 10); 0 = no cap.
	MaxAttachments int
	// Segments, for SMS, counts the parts a text is billed as (encoding
	// "GSM-7" or "UCS-2"); MaxSegments > 0 refuses longer texts.
	Segments    func(text string) (encoding string, segments int)
	MaxSegments int
}

// MediaLimit is the size cap of one file of kind (inbox.Kind*): its entry in
// MaxMediaSizes, else MaxMediaSize; 0 = no cap.
func (r Rules) MediaLimit(kind string) int64 {
	if n, ok := r.MaxMediaSizes[kind]; ok {
		return n
	}
	return r.MaxMediaSize
}

// Request is an inbound webhook request as the pipeline hands it to an adapter.
type Request struct {
	Method string
	URL    string // the full public URL as configured (for Twilio signatures)
	Header http.Header
	Body   []byte
	Query  map[string][]string
}

// Adapter is one provider.
type Adapter interface {
	Kind() string
	// Verify checks the request's signature or secret over the raw bytes.
	// It returns an inbox Unauthorized error when unverified.
	Verify(cfg Config, req Request) error
	// Handshake answers a GET on the webhook URL (Meta's hub.challenge).
	// ok is false when the adapter has no handshake.
	Handshake(cfg Config, req Request) (status int, body string, ok bool)
	// Parse turns a verified payload into normalized events. It never panics;
	// anything it does not understand becomes an EventMessage of kind
	// unsupported carrying the raw piece. An error means the whole body is
	// unreadable (it is then stored as one unsupported event by the caller).
	Parse(cfg Config, req Request) ([]Event, error)
	// Ack is the body and content type to answer the webhook with (Twilio wants TwiML).
	Ack() (contentType string, body []byte)
	// Send delivers an outgoing message.
	Send(ctx context.Context, cfg Config, out Outgoing) (SendResult, error)
	// FetchMedia downloads a file named by ProviderRef.
	FetchMedia(ctx context.Context, cfg Config, ref string) (body io.ReadCloser, mimeType string, err error)
	// Rules are the channel's constraints.
	Rules(cfg Config) Rules
	// ValidateConfig checks config and secrets when a channel is created or changed.
	ValidateConfig(config map[string]any, secrets map[string]string) error
}

// Registry maps kinds to adapters.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Adapter
}

// NewRegistry returns a registry holding the given adapters.
func NewRegistry(adapters ...Adapter) *Registry {
	r := &Registry{m: map[string]Adapter{}}
	for _, a := range adapters {
		r.m[a.Kind()] = a
	}
	return r
}

// Get returns the adapter of kind.
func (r *Registry) Get(kind string) (Adapter, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.m[kind]
	return a, ok
}

// Kinds lists the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.m))
	for k := range r.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TextLen measures text in a channel's unit (Rules.TextLenUnit): "bytes"
// (UTF-8), "utf16" (code units) or runes (the default, "chars").
func TextLen(text, unit string) int {
	switch unit {
	case "bytes":
		return len(text)
	case "utf16":
		n := 0
		for _, r := range text {
			n += utf16.RuneLen(r)
		}
		return n
	}
	return utf8.RuneCountInString(text)
}

// Answerer is implemented by adapters whose provider expects an answer to
// some inbound events (Event.QueryID). Answering is best effort: it is
// called after the event was applied (again if the webhook is redelivered),
// and an error is only logged (the provider's query expires on its own).
type Answerer interface {
	Answer(ctx context.Context, cfg Config, ev Event) error
}

// ChatDirectory is implemented by adapters whose webhooks do not carry a
// group's title (Wappi): the pipeline asks the provider's chat list for the
// group chats it saw without one.
type ChatDirectory interface {
	// GroupInfo returns an EventGroupInfo (ChatID, GroupTitle, GroupAvatar)
	// for each of the wanted group chat ids (as Parse reports them) that the
	// provider lists; the others are left out.
	GroupInfo(ctx context.Context, cfg Config, chatIDs []string) ([]Event, error)
}

// QRAuthorizer is implemented by adapters whose channels are authorized by
// scanning a QR code with the phone (Wappi WhatsApp and MAX profiles).
type QRAuthorizer interface {
	// AuthorizationQR returns the provider's current QR image (a data URL or
	// base64 PNG) and the profile's authorization state.
	AuthorizationQR(ctx context.Context, cfg Config) (qr string, state string, err error)
	// ProfileStatus asks the provider for the profile's authorization state.
	ProfileStatus(ctx context.Context, cfg Config) (state string, err error)
}

// ProfileLookup is implemented by adapters whose webhooks name a sender only
// by an id (Messenger's PSID, Instagram's IGSID): the pipeline asks the
// provider's profile API, in the background, for the name and picture of
// senders it has no name for, and fills only the contact's empty fields.
type ProfileLookup interface {
	// Profile returns the Name and AvatarURL of the user identifier (an
	// Event.Sender.Identifier as Parse reports it); Identifier is set too.
	Profile(ctx context.Context, cfg Config, identifier string) (Party, error)
}
