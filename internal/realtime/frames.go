package realtime

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/parleyhq/parley/internal/inbox"
)

// Server frame types.
const (
	FrameHello    = "hello"
	FrameChange   = "change"
	FrameTyping   = "typing"
	FramePresence = "presence"
	FrameViewers  = "viewers"
	FrameResync   = "resync"
	FramePong     = "pong"
	FrameViewing  = "viewing"
	FramePing     = "ping"
)

// Presence statuses.
const (
	StatusOnline  = "online"
	StatusAway    = "away"
	StatusBusy    = "busy"
	StatusOffline = "offline"
)

// changeFrame is a change as API.md frames it: {"type":"change",...change}.
type changeFrame struct {
	Type string `json:"type"`
	inbox.Change
}

type typingFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	State          string `json:"state"`
}

type presenceFrame struct {
	Type   string `json:"type"`
	UserID string `json:"user_id"`
	Status string `json:"status"`
}

type viewersFrame struct {
	Type           string   `json:"type"`
	ConversationID string   `json:"conversation_id"`
	UserIDs        []string `json:"user_ids"`
}

type helloFrame struct {
	Type              string              `json:"type"`
	Cursor            string              `json:"cursor"`
	UserID            string              `json:"user_id"`
	Node              string              `json:"node"`
	HeartbeatSeconds  float64             `json:"heartbeat_seconds"`
	TypingTimeoutSecs float64             `json:"typing_timeout_seconds"`
	Presence          map[string]string   `json:"presence"`
	Viewers           map[string][]string `json:"viewers"`
}

const (
	resyncFrame = `{"type":"resync"}`
	pongFrame   = `{"type":"pong"}`
)

// clientFrame is a frame sent by a client.
type clientFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	State          string `json:"state"`
	Status         string `json:"status"`
}

var errBadFrame = errors.New("realtime: bad client frame")

// parseClientFrame decodes and validates one client frame.
func parseClientFrame(b []byte) (clientFrame, error) {
	var f clientFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return f, errBadFrame
	}
	switch f.Type {
	case FramePing:
	case FrameTyping:
		if f.ConversationID == "" || !validToken(f.ConversationID) || (f.State != "on" && f.State != "off") {
			return f, errBadFrame
		}
	case FrameViewing:
		if f.ConversationID != "" && !validToken(f.ConversationID) {
			return f, errBadFrame
		}
	case FramePresence:
		if !validStatus(f.Status) {
			return f, errBadFrame
		}
	default:
		return f, errBadFrame
	}
	return f, nil
}

func validStatus(s string) bool {
	return s == StatusOnline || s == StatusAway || s == StatusBusy
}

// outChange is a committed change ready for fan-out: encoded once, filtered
// per connection without being modified.
type outChange struct {
	seq     int64
	entity  string
	userID  string // owner of a read_state change
	hasData bool
	frame   []byte // the encoded WebSocket frame
}

func newOutChange(c inbox.Change) *outChange {
	oc := &outChange{seq: c.Seq, entity: c.Entity, hasData: len(c.Data) > 0 && string(c.Data) != "null"}
	if c.Entity == inbox.EntityReadState && len(c.Data) > 0 {
		var rs struct {
			UserID string `json:"user_id"`
		}
		if json.Unmarshal(c.Data, &rs) == nil {
			oc.userID = rs.UserID
		}
	}
	f := changeFrame{Type: FrameChange, Change: c}
	b, err := json.Marshal(f)
	if err != nil { // invalid data JSON: deliver the change without data rather than break the sequence
		f.Data = nil
		b, _ = json.Marshal(f)
	}
	oc.frame = textFrame(b)
	return oc
}

// adminOnlyEntity reports whether entity is never sent to agents.
func adminOnlyEntity(entity string) bool {
	switch entity {
	case "provider_account", "api_token", "token", "webhook", "audit":
		return true
	}
	return false
}

// allowed reports whether the principal of c may receive oc.
func (c *conn) allowed(oc *outChange) bool {
	if oc.entity == inbox.EntityReadState {
		// a read_state without data (a delete) reveals nothing: everyone may drop it
		return oc.userID == c.p.UserID || oc.userID == "" && !oc.hasData
	}
	if adminOnlyEntity(oc.entity) {
		return c.admin
	}
	return true
}

func parseSeq(cursor string) (int64, error) {
	if cursor == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(cursor, 10, 64)
	if err != nil || n < 0 {
		return 0, inbox.Errorf(inbox.Conflict, "unknown cursor")
	}
	return n, nil
}

func formatSeq(n int64) string { return strconv.FormatInt(n, 10) }

// busChanges is the bus message of one commit.
type busChanges struct {
	WS      string         `json:"ws"`
	Changes []inbox.Change `json:"changes"`
}
