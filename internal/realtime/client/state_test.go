package client

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/internal/inbox"
)

func TestStateSnapshotChangesTombstones(t *testing.T) {
	snap, err := SnapshotFromInbox(inbox.Snapshot{
		Cursor:        "10",
		Conversations: []inbox.Conversation{{ID: "c1"}, {ID: "c2"}},
		Labels:        []inbox.Label{{ID: "l1", Name: "VIP"}},
		Members:       []inbox.Member{{User: inbox.User{ID: "u1", Name: "Ann"}, Role: inbox.RoleAgent}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := NewState()
	if err := s.Reset(snap); err != nil {
		t.Fatal(err)
	}
	if s.Len(inbox.EntityConversation) != 2 || s.Len(inbox.EntityMember) != 1 || s.Cursor() != "10" {
		t.Fatalf("after snapshot: %d conversations, %d members, cursor %s", s.Len(inbox.EntityConversation), s.Len(inbox.EntityMember), s.Cursor())
	}
	steps := []struct {
		c       inbox.Change
		applied bool
	}{
		{inbox.Change{Seq: 9, Entity: "conversation", Op: "delete", ID: "c1"}, false}, // older than the snapshot
		{inbox.Change{Seq: 11, Entity: "conversation", Op: "upsert", ID: "c3", Data: json.RawMessage(`{"id":"c3"}`)}, true},
		{inbox.Change{Seq: 12, Entity: "conversation", Op: "delete", ID: "c1"}, true},
		{inbox.Change{Seq: 12, Entity: "conversation", Op: "upsert", ID: "c1", Data: json.RawMessage(`{"id":"c1"}`)}, false}, // duplicate seq
		{inbox.Change{Seq: 13, Entity: "label", Op: "upsert", ID: "l1", Data: json.RawMessage(`{"id":"l1","name":"Gold"}`)}, true},
		{inbox.Change{Seq: 15, Entity: "message", Op: "upsert", ID: "m1", Data: json.RawMessage(`{"id":"m1"}`)}, true}, // agents may see jumps
	}
	for i, st := range steps {
		if got := s.Apply(st.c); got != st.applied {
			t.Fatalf("step %d: applied %v", i, got)
		}
	}
	if _, ok := s.Get("conversation", "c1"); ok || !s.Deleted("conversation", "c1") {
		t.Fatal("c1 should be deleted with a tombstone")
	}
	if d, _ := s.Get("label", "l1"); string(d) != `{"id":"l1","name":"Gold"}` {
		t.Fatalf("label %s", d)
	}
	if s.Cursor() != "15" || s.Len("conversation") != 2 {
		t.Fatalf("cursor %s, %d conversations", s.Cursor(), s.Len("conversation"))
	}
	// REST data cannot resurrect a deleted entity nor overwrite a newer one
	if s.Merge("conversation", "c1", json.RawMessage(`{"id":"c1"}`)) {
		t.Fatal("merge resurrected c1")
	}
	if s.Merge("label", "l1", json.RawMessage(`{"id":"l1","name":"old"}`)) {
		t.Fatal("merge overwrote l1")
	}
	if !s.Merge("message", "m0", json.RawMessage(`{"id":"m0"}`)) || s.Len("message") != 2 {
		t.Fatal("merge of an older message failed")
	}
	// an upsert after a delete (re-creation) clears the tombstone
	s.Apply(inbox.Change{Seq: 16, Entity: "conversation", Op: "upsert", ID: "c1", Data: json.RawMessage(`{"id":"c1","v":2}`)})
	if s.Deleted("conversation", "c1") {
		t.Fatal("tombstone kept after re-creation")
	}
	if err := s.Reset(Snapshot{Cursor: "bad"}); err == nil {
		t.Fatal("bad cursor accepted")
	}
}
