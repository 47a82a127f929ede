package inbox

import (
	"context"
	"time"
)

// Page is one page of a cursor-paginated list. NextCursor is "" on the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
	Total      *int   `json:"total,omitempty"`
}

// SetupInput creates the first workspace and its owner.
type SetupInput struct {
	Workspace    string
	Name         string
	Email        string
	PasswordHash string
}

// NewMember adds a member to a workspace, creating the user when the email is new
// (PasswordHash and Name are then required).
type NewMember struct {
	Email        string
	Name         string
	PasswordHash string
	Role         Role
}

// UserPatch changes a user's profile.
type UserPatch struct {
	Name         Optional[string]
	AvatarURL    Optional[string]
	Availability Optional[string]
	PasswordHash Optional[string]
}

// ChannelPatch changes a channel. SecretsEnc replaces the sealed secrets when set.
type ChannelPatch struct {
	Name         Optional[string]
	Config       Optional[map[string]any]
	Secrets      Optional[map[string]SecretState]
	SecretsEnc   Optional[[]byte]
	Status       Optional[string]
	StatusDetail Optional[string]
}

// ContactFilter selects contacts.
type ContactFilter struct {
	Q      string // matches name, email, phone, identifier (case-insensitive substring)
	Limit  int
	Cursor string
}

// ContactPatch changes a contact. Emails/Phones must already be normalized.
type ContactPatch struct {
	Name       Optional[string]
	AvatarURL  Optional[string]
	Emails     Optional[[]string]
	Phones     Optional[[]string]
	Tags       Optional[[]string]
	Attributes Optional[map[string]any]
	Notes      Optional[string]
	Blocked    Optional[bool]
}

// MergeInput merges contacts into Primary. Keep maps a field name (name,
// avatar_url, notes, blocked) to the id of the contact whose value wins;
// lists (emails, phones, identities, tags) are unions, attributes are merged
// with the primary's keys winning unless Keep names another contact for "attributes".
type MergeInput struct {
	PrimaryID string
	MergeIDs  []string
	Keep      map[string]string
}

// ConversationFilter selects a queue page. UserID is the viewer (for view=mine and unread counts).
type ConversationFilter struct {
	UserID   string
	View     string
	Status   string
	Channel  string
	Label    string
	Assignee string // user id, or "none"
	Team     string
	Q        string
	Limit    int
	Cursor   string
}

// ConversationPatch changes a conversation. Pointer values: nil means clear.
type ConversationPatch struct {
	Status       Optional[string]
	Priority     Optional[string]
	SnoozedUntil Optional[*time.Time]
	AssigneeID   Optional[*string]
	TeamID       Optional[*string]
	Title        Optional[string]
}

// NewMessage is a message created by the API (a private note now; outbound sends
// get an outbox row in the same transaction when Outbox is true).
type NewMessage struct {
	ConversationID string
	Sender         Actor
	Direction      string
	Kind           string
	Text           string
	Content        []byte
	AttachmentIDs  []string // uploads to attach
	ReplyToID      *string
	Private        bool
	Mentions       []string
	Status         string
	Outbox         bool // create an outbox row in the same transaction
}

// Snapshot is the initial state of a client's sync.
type Snapshot struct {
	Cursor        string         `json:"cursor"`
	Conversations []Conversation `json:"conversations"`
	Labels        []Label        `json:"labels"`
	Members       []Member       `json:"members"`
	Channels      []Channel      `json:"channels"`
	Teams         []Team         `json:"teams"`
}

// ChangeBatch is one page of the change log.
type ChangeBatch struct {
	Changes []Change `json:"changes"`
	Cursor  string   `json:"cursor"`
	More    bool     `json:"more"`
}

// Store is the data layer. Every workspace-scoped method takes the workspace id
// and answers NotFound for an id of another workspace. Exported methods own
// their transaction; every mutation appends its change rows in that transaction.
type Store interface {
	Close() error
	Ping(ctx context.Context) error
	Dialect() string // "sqlite" or "postgres"

	// Set-up and users.
	HasUsers(ctx context.Context) (bool, error)
	Setup(ctx context.Context, in SetupInput) (User, Workspace, error) // Conflict once a user exists
	CreateWorkspace(ctx context.Context, ownerID, name string) (Workspace, error)
	GetWorkspace(ctx context.Context, wsID string) (Workspace, error)
	UserByEmail(ctx context.Context, email string) (User, error) // includes PasswordHash
	UserByID(ctx context.Context, id string) (User, error)
	UpdateUser(ctx context.Context, id string, p UserPatch) (User, error)
	UserWorkspaces(ctx context.Context, userID string) ([]WorkspaceRef, error)
	MemberRole(ctx context.Context, wsID, userID string) (Role, error) // NotFound when not a member
	ListMembers(ctx context.Context, wsID string) ([]Member, error)
	AddMember(ctx context.Context, wsID string, in NewMember) (Member, error) // Conflict if already a member
	UpdateMemberRole(ctx context.Context, wsID, userID string, role Role) (Member, error)
	RemoveMember(ctx context.Context, wsID, userID string) error // unassigns their conversations

	// Sessions and API tokens.
	CreateSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, tokenHash string) (Session, error) // NotFound when missing or expired
	DeleteSession(ctx context.Context, tokenHash string) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
	CreateAPIToken(ctx context.Context, t APIToken) (APIToken, error)
	APITokenByHash(ctx context.Context, tokenHash string) (APIToken, error)
	ListAPITokens(ctx context.Context, wsID, userID string) ([]APIToken, error) // userID "" = all
	DeleteAPIToken(ctx context.Context, wsID, id string) error
	TouchAPIToken(ctx context.Context, id string, at time.Time) error

	// Teams and labels.
	ListTeams(ctx context.Context, wsID string) ([]Team, error)
	CreateTeam(ctx context.Context, wsID string, t Team) (Team, error)
	UpdateTeam(ctx context.Context, wsID string, t Team) (Team, error)
	DeleteTeam(ctx context.Context, wsID, id string) error
	ListLabels(ctx context.Context, wsID string) ([]Label, error)
	CreateLabel(ctx context.Context, wsID string, l Label) (Label, error) // Conflict on duplicate name
	UpdateLabel(ctx context.Context, wsID string, l Label) (Label, error)
	DeleteLabel(ctx context.Context, wsID, id string) error

	// Provider accounts and channels.
	ListProviderAccounts(ctx context.Context, wsID string) ([]ProviderAccount, error)
	CreateProviderAccount(ctx context.Context, wsID string, a ProviderAccount) (ProviderAccount, error)
	GetProviderAccount(ctx context.Context, wsID, id string) (ProviderAccount, error)
	UpdateProviderAccount(ctx context.Context, wsID string, a ProviderAccount) (ProviderAccount, error)
	DeleteProviderAccount(ctx context.Context, wsID, id string) error // Conflict while channels use it
	ListChannels(ctx context.Context, wsID string) ([]Channel, error)
	CreateChannel(ctx context.Context, wsID string, c Channel) (Channel, error)
	GetChannel(ctx context.Context, wsID, id string) (Channel, error)
	ChannelByID(ctx context.Context, id string) (Channel, error) // unscoped: for webhooks and workers
	ChannelHealth(ctx context.Context, wsID, id string) (ChannelHealth, error)
	UpdateChannel(ctx context.Context, wsID, id string, p ChannelPatch) (Channel, error)
	DeleteChannel(ctx context.Context, wsID, id string) error

	// Contacts.
	ListContacts(ctx context.Context, wsID string, f ContactFilter) (Page[Contact], error)
	CreateContact(ctx context.Context, wsID string, c Contact) (Contact, error)
	GetContact(ctx context.Context, wsID, id string) (Contact, error)
	UpdateContact(ctx context.Context, wsID, id string, p ContactPatch) (Contact, error)
	DeleteContact(ctx context.Context, wsID, id string) error
	MergeContacts(ctx context.Context, wsID string, in MergeInput) (Contact, error)
	ContactByIdentity(ctx context.Context, wsID, channelID, identifier string) (Contact, error)
	ContactConversations(ctx context.Context, wsID, contactID string) ([]Conversation, error)

	// Conversations.
	ListConversations(ctx context.Context, wsID string, f ConversationFilter) (Page[Conversation], error)
	GetConversation(ctx context.Context, wsID, userID, id string) (Conversation, error)
	CreateConversation(ctx context.Context, wsID, contactID, channelID string) (Conversation, bool, error) // bool: created
	UpdateConversation(ctx context.Context, wsID, userID, id string, p ConversationPatch) (Conversation, error)
	MarkRead(ctx context.Context, wsID, userID, id string) (ReadState, error)
	MarkUnread(ctx context.Context, wsID, userID, id string) (ReadState, error)
	AddConversationLabels(ctx context.Context, wsID, id string, labelIDs []string) (Conversation, error)
	RemoveConversationLabel(ctx context.Context, wsID, id, labelID string) (Conversation, error)
	Participants(ctx context.Context, wsID, conversationID string) ([]Participant, error)

	// Messages.
	ListMessages(ctx context.Context, wsID, conversationID, before string, limit int) (Page[Message], error)
	GetMessage(ctx context.Context, wsID, id string) (Message, error)
	CreateMessage(ctx context.Context, wsID string, m NewMessage) (Message, error)
	AddReaction(ctx context.Context, wsID, messageID string, r Reaction) (Message, error)
	RemoveReaction(ctx context.Context, wsID, messageID string, by Actor) (Message, error)

	// Sync.
	Snapshot(ctx context.Context, wsID, userID string) (Snapshot, error)
	Changes(ctx context.Context, wsID, since string, limit int) (ChangeBatch, error) // Conflict when since is too old or unknown
	PruneChanges(ctx context.Context, olderThan time.Time) (int, error)
}
