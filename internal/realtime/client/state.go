package client

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/parleyhq/parley/internal/inbox"
)

// Snapshot is the starting point of a State: a cursor and the entities it
// covers, entity kind → id → API JSON.
type Snapshot struct {
	Cursor   string
	Entities map[string]map[string]json.RawMessage
}

// SnapshotFromInbox converts GET /sync/snapshot's answer into a Snapshot.
func SnapshotFromInbox(s inbox.Snapshot) (Snapshot, error) {
	out := Snapshot{Cursor: s.Cursor, Entities: map[string]map[string]json.RawMessage{}}
	add := func(entity string, items any) error {
		b, err := json.Marshal(items)
		if err != nil {
			return err
		}
		var list []json.RawMessage
		if err := json.Unmarshal(b, &list); err != nil {
			return err
		}
		m := map[string]json.RawMessage{}
		for _, it := range list {
			var id struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(it, &id); err != nil || id.ID == "" {
				return fmt.Errorf("client: %s without id in snapshot", entity)
			}
			m[id.ID] = it
		}
		out.Entities[entity] = m
		return nil
	}
	for entity, items := range map[string]any{
		inbox.EntityConversation: s.Conversations,
		inbox.EntityLabel:        s.Labels,
		inbox.EntityMember:       s.Members,
		inbox.EntityChannel:      s.Channels,
		inbox.EntityTeam:         s.Teams,
	} {
		if err := add(entity, items); err != nil {
			return Snapshot{}, err
		}
	}
	return out, nil
}

// State reassembles entities from a snapshot plus the change stream: an
// upsert replaces the entity, a delete removes it and leaves a tombstone so
// that data loaded later by REST (possibly older than the delete) cannot
// bring it back. Changes at or below the cursor are ignored, so replays and
// duplicates are harmless. It is the reference for the web app's sync logic
// and safe for concurrent use.
type State struct {
	mu         sync.RWMutex
	cursor     int64
	entities   map[string]map[string]json.RawMessage
	tombstones map[string]map[string]int64 // entity → id → seq of the delete
}

// NewState returns an empty state at cursor 0.
func NewState() *State {
	return &State{entities: map[string]map[string]json.RawMessage{}, tombstones: map[string]map[string]int64{}}
}

// Reset replaces the whole state with a snapshot (first load and resync).
func (s *State) Reset(snap Snapshot) error {
	cur, err := parseCursor(snap.Cursor)
	if err != nil {
		return err
	}
	ents := map[string]map[string]json.RawMessage{}
	for e, m := range snap.Entities {
		cp := make(map[string]json.RawMessage, len(m))
		for id, d := range m {
			cp[id] = d
		}
		ents[e] = cp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursor = cur
	s.entities = ents
	s.tombstones = map[string]map[string]int64{}
	return nil
}

// Apply applies one change and reports whether it was new (seq > cursor).
func (s *State) Apply(c inbox.Change) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Seq <= s.cursor {
		return false
	}
	s.cursor = c.Seq
	switch c.Op {
	case inbox.OpDelete:
		delete(s.entities[c.Entity], c.ID)
		if s.tombstones[c.Entity] == nil {
			s.tombstones[c.Entity] = map[string]int64{}
		}
		s.tombstones[c.Entity][c.ID] = c.Seq
	default:
		if s.entities[c.Entity] == nil {
			s.entities[c.Entity] = map[string]json.RawMessage{}
		}
		s.entities[c.Entity][c.ID] = append(json.RawMessage(nil), c.Data...)
		delete(s.tombstones[c.Entity], c.ID)
	}
	return true
}

// Merge adds an entity loaded by REST (for example older messages) unless the
// change stream already deleted it or already holds it (the stream is newer).
func (s *State) Merge(entity, id string, data json.RawMessage) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dead := s.tombstones[entity][id]; dead {
		return false
	}
	if _, ok := s.entities[entity][id]; ok {
		return false
	}
	if s.entities[entity] == nil {
		s.entities[entity] = map[string]json.RawMessage{}
	}
	s.entities[entity][id] = append(json.RawMessage(nil), data...)
	return true
}

// Cursor returns the cursor to resume from.
func (s *State) Cursor() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return strconv.FormatInt(s.cursor, 10)
}

// Get returns one entity.
func (s *State) Get(entity, id string) (json.RawMessage, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.entities[entity][id]
	return d, ok
}

// Deleted reports whether the stream deleted entity id.
func (s *State) Deleted(entity, id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.tombstones[entity][id]
	return ok
}

// Len returns how many entities of a kind the state holds.
func (s *State) Len(entity string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entities[entity])
}

// Entities returns a copy of the entities of one kind.
func (s *State) Entities(entity string) map[string]json.RawMessage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]json.RawMessage, len(s.entities[entity]))
	for id, d := range s.entities[entity] {
		out[id] = d
	}
	return out
}

func parseCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(c, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("client: bad cursor %q", c)
	}
	return n, nil
}
