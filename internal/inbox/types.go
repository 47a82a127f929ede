package inbox

import (
	"bytes"
	"encoding/json"
	"time"
)

// Role of a member in a workspace.
type Role string

// Roles, most powerful first.
const (
	RoleOwner Role = "owner"
	RoleAdmin Role = "admin"
	RoleAgent Role = "agent"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleAdmin || r == RoleAgent }

// CanManage reports whether r may manage channels, members, teams, labels and tokens of others.
func (r Role) CanManage() bool { return r == RoleOwner || r == RoleAdmin }

// Optional is a PATCH field: Set is true when the key was present in the JSON
// body (even as null). Optional[*T] distinguishes "absent", "null" and a value.
type Optional[T any] struct {
	Set   bool
	Value T
}

// Some returns a set Optional.
func Some[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: v} }

// UnmarshalJSON marks the field as present.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		var zero T
		o.Value = zero
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// MarshalJSON writes the value (null when unset).
func (o Optional[T]) MarshalJSON() ([]byte, error) {
	if !o.Set {
		return []byte("null"), nil
	}
	return json.Marshal(o.Value)
}

// Workspace is an isolated tenant.
type Workspace struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// WorkspaceRef is a workspace as seen by one of its members.
type WorkspaceRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// User is a person who can log in. The password hash never leaves the store layer in JSON.
type User struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	AvatarURL    string    `json:"avatar_url"`
	Availability string    `json:"availability"` // online|away|busy (chosen by the user)
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}

// Member is a user inside one workspace.
type Member struct {
	User
	Role     Role      `json:"role"`
	TeamIDs  []string  `json:"team_ids"`
	JoinedAt time.Time `json:"joined_at"`
}

// Team groups members for assignment.
type Team struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	MemberIDs   []string  `json:"member_ids"`
	CreatedAt   time.Time `json:"created_at"`
}

// Session is a server-side login session. TokenHash is SHA-256 of the cookie value.
type Session struct {
	TokenHash string    `json:"-"`
	UserID    string    `json:"user_id"`
	CSRFToken string    `json:"-"`
	UserAgent string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// APIToken is a bearer token of one member in one workspace. Only its SHA-256 is stored.
type APIToken struct {
	ID          string     `json:"id"`
	WorkspaceID string     `json:"workspace_id"`
	UserID      string     `json:"user_id"`
	Name        string     `json:"name"`
	TokenHash   string     `json:"-"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
}

// SecretState is what the API shows of a secret: only whether it is set.
type SecretState struct {
	Configured bool `json:"configured"`
}

// ProviderAccount is one provider credential that may serve several channels.
// SecretsEnc is the AES-GCM sealed JSON object of secret values.
type ProviderAccount struct {
	ID          string                 `json:"id"`
	WorkspaceID string                 `json:"workspace_id"`
	Provider    string                 `json:"provider"`
	Name        string                 `json:"name"`
	Config      map[string]any         `json:"config"`
	Secrets     map[string]SecretState `json:"secrets"`
	SecretsEnc  []byte                 `json:"-"`
	CreatedAt   time.Time              `json:"created_at"`
	UpdatedAt   time.Time              `json:"updated_at"`
}

// Channel is one routing profile: a number, bot, page or mailbox.
type Channel struct {
	ID                string                 `json:"id"`
	WorkspaceID       string                 `json:"workspace_id"`
	Kind              string                 `json:"kind"`
	Name              string                 `json:"name"`
	ProviderAccountID string                 `json:"provider_account_id,omitempty"`
	Config            map[string]any         `json:"config"`
	Secrets           map[string]SecretState `json:"secrets"`
	SecretsEnc        []byte                 `json:"-"`
	WebhookURL        string                 `json:"webhook_url"`
	Status            string                 `json:"status"` // active|disconnected|error|pending
	StatusDetail      string                 `json:"status_detail,omitempty"`
	CreatedAt         time.Time              `json:"created_at"`
	UpdatedAt         time.Time              `json:"updated_at"`
}

// Presented is the channel as the API shows it (REST answers and change
// rows alike): with its webhook URL under publicURL, without its sealed
// secrets, and with empty maps rather than null.
func (c Channel) Presented(publicURL string) Channel {
	c.WebhookURL = publicURL + "/webhooks/" + c.ID
	c.SecretsEnc = nil
	if c.Secrets == nil {
		c.Secrets = map[string]SecretState{}
	}
	if c.Config == nil {
		c.Config = map[string]any{}
	}
	return c
}

// Identity is a contact's address on one channel.
type Identity struct {
	ChannelID   string `json:"channel_id"`
	ChannelKind string `json:"channel_kind"`
	Identifier  string `json:"identifier"`
}

// Contact is a customer, possibly reachable on several channels.
type Contact struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	AvatarURL  string         `json:"avatar_url"`
	Emails     []string       `json:"emails"`
	Phones     []string       `json:"phones"`
	Identities []Identity     `json:"identities"`
	Tags       []string       `json:"tags"`
	Attributes map[string]any `json:"attributes"`
	Notes      string         `json:"notes"`
	Blocked    bool           `json:"blocked"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
}

// ContactRef is the contact summary embedded in a conversation.
type ContactRef struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	AvatarURL string `json:"avatar_url"`
}

// Conversation statuses.
const (
	StatusOpen     = "open"
	StatusPending  = "pending"
	StatusSnoozed  = "snoozed"
	StatusResolved = "resolved"
	StatusSpam     = "spam"
)

// ValidConversationStatus reports whether s is a conversation status.
func ValidConversationStatus(s string) bool {
	switch s {
	case StatusOpen, StatusPending, StatusSnoozed, StatusResolved, StatusSpam:
		return true
	}
	return false
}

// Views of the conversation queue.
const (
	ViewMine       = "mine"       // assigned to me, not resolved or spam
	ViewUnassigned = "unassigned" // nobody assigned, open or pending
	ViewOpen       = "open"       // open or pending
	ViewAll        = "all"        // everything but spam
	ViewClosed     = "closed"     // resolved
	ViewSpam       = "spam"       // spam
)

// ValidView reports whether v is a queue view.
func ValidView(v string) bool {
	switch v {
	case ViewMine, ViewUnassigned, ViewOpen, ViewAll, ViewClosed, ViewSpam:
		return true
	}
	return false
}

// LastMessage summarises the newest non-private message of a conversation.
type LastMessage struct {
	Preview   string    `json:"preview"`
	At        time.Time `json:"at"`
	Direction string    `json:"direction"`
}

// Participant is a member of a group conversation.
type Participant struct {
	ContactID  string    `json:"contact_id"`
	Name       string    `json:"name"`
	Identifier string    `json:"identifier"`
	Role       string    `json:"role,omitempty"`
	JoinedAt   time.Time `json:"joined_at"`
}

// Conversation is one thread with a contact (or a group chat) on one channel.
type Conversation struct {
	ID            string         `json:"id"`
	Number        int64          `json:"number"`
	ChannelID     string         `json:"channel_id"`
	ChannelKind   string         `json:"channel_kind"`
	Contact       ContactRef     `json:"contact"`
	Status        string         `json:"status"`
	Priority      string         `json:"priority"` // none|low|medium|high|urgent
	SnoozedUntil  *time.Time     `json:"snoozed_until"`
	AssigneeID    *string        `json:"assignee_id"`
	TeamID        *string        `json:"team_id"`
	Labels        []string       `json:"labels"` // label ids
	IsGroup       bool           `json:"is_group"`
	Title         string         `json:"title"`
	GroupMeta     map[string]any `json:"group_meta,omitempty"`
	ExternalChat  string         `json:"external_chat_id,omitempty"`
	LastMessage   *LastMessage   `json:"last_message"`
	LastInboundAt *time.Time     `json:"last_inbound_at"`
	UnreadCount   int            `json:"unread_count"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
}

// Message kinds.
const (
	KindText        = "text"
	KindImage       = "image"
	KindAudio       = "audio"
	KindVoice       = "voice"
	KindVideo       = "video"
	KindDocument    = "document"
	KindLocation    = "location"
	KindContacts    = "contacts"
	KindSticker     = "sticker"
	KindTemplate    = "template"
	KindInteractive = "interactive"
	KindUnsupported = "unsupported"
)

// Message statuses, in their monotonic order (failed is terminal and separate).
const (
	MsgReceived  = "received"
	MsgQueued    = "queued"
	MsgSent      = "sent"
	MsgDelivered = "delivered"
	MsgRead      = "read"
	MsgFailed    = "failed"
)

// StatusRank orders outbound statuses: a status may only move to a higher rank.
// failed ranks above everything so it is terminal.
func StatusRank(s string) int {
	switch s {
	case MsgQueued:
		return 1
	case MsgSent:
		return 2
	case MsgDelivered:
		return 3
	case MsgRead:
		return 4
	case MsgFailed:
		return 5
	}
	return 0
}

// Actor is who did something: a contact, an agent (user), a bot or the system.
type Actor struct {
	Type string `json:"type"` // contact|agent|bot|system
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Location is a shared place.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
	URL       string  `json:"url,omitempty"`
}

// Attachment is a file of a message (or an upload not yet sent).
// ProviderRef is how the provider names the file (media id, file_id, URL);
// StorageKey is where the bytes are cached locally, "" until fetched.
type Attachment struct {
	ID          string `json:"id"`
	MessageID   string `json:"message_id,omitempty"`
	Kind        string `json:"kind"`
	MimeType    string `json:"mime_type"`
	Filename    string `json:"filename"`
	Size        int64  `json:"size"`
	URL         string `json:"url"` // API path to fetch the bytes
	DurationMS  int64  `json:"duration_ms,omitempty"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
	ProviderRef string `json:"-"`
	StorageKey  string `json:"-"`
}

// Reaction is one emoji on a message.
type Reaction struct {
	Emoji string `json:"emoji"`
	By    Actor  `json:"by"`
}

// Message is one item of a conversation's history.
type Message struct {
	ID             string          `json:"id"`
	ConversationID string          `json:"conversation_id"`
	Direction      string          `json:"direction"` // inbound|outbound
	Sender         Actor           `json:"sender"`
	Kind           string          `json:"kind"`
	Text           string          `json:"text"`
	Content        json.RawMessage `json:"content,omitempty"` // structured: contacts, template, interactive, raw unsupported
	Attachments    []Attachment    `json:"attachments"`
	Location       *Location       `json:"location"`
	ReplyToID      *string         `json:"reply_to_id"`
	Reactions      []Reaction      `json:"reactions"`
	Status         string          `json:"status"`
	Error          string          `json:"error"`
	ExternalID     string          `json:"external_id"`
	Private        bool            `json:"private"`
	Mentions       []string        `json:"mentions,omitempty"` // user ids mentioned in a private note
	PreviousText   string          `json:"previous_text,omitempty"`
	EditedAt       *time.Time      `json:"edited_at"`
	DeletedAt      *time.Time      `json:"deleted_at"`
	CreatedAt      time.Time       `json:"created_at"`
}

// Label tags conversations.
type Label struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Color       string    `json:"color"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

// Change ops.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
)

// Change entities.
const (
	EntityConversation = "conversation"
	EntityMessage      = "message"
	EntityContact      = "contact"
	EntityLabel        = "label"
	EntityMember       = "member"
	EntityTeam         = "team"
	EntityChannel      = "channel"
	EntityReadState    = "read_state" // data: ReadState; only for its user
)

// Change is one row of the change log. Data is the entity as the API shows it
// (user-neutral: a conversation's unread_count is 0 there), nil for deletes.
type Change struct {
	WorkspaceID string          `json:"-"`
	Seq         int64           `json:"seq"`
	Entity      string          `json:"entity"`
	Op          string          `json:"op"`
	ID          string          `json:"id"`
	Data        json.RawMessage `json:"data"`
	At          time.Time       `json:"at"`
}

// ReadState is a user's read position in a conversation.
type ReadState struct {
	ConversationID string    `json:"conversation_id"`
	UserID         string    `json:"user_id"`
	LastReadAt     time.Time `json:"last_read_at"`
	UnreadCount    int       `json:"unread_count"`
}

// ChannelHealth is a channel's recent activity, for GET /channels/{id}/health.
type ChannelHealth struct {
	ID             string     `json:"id"`
	Status         string     `json:"status"`
	StatusDetail   string     `json:"status_detail"`
	LastInboundAt  *time.Time `json:"last_inbound_at"`
	LastOutboundAt *time.Time `json:"last_outbound_at"`
	LastError      string     `json:"last_error"`
	LastErrorAt    *time.Time `json:"last_error_at"`
}
