package store

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

// TestOperatorReactionOutbox: an operator's reaction on a message the
// customer has is stored and queued for the provider in one transaction, on
// both databases; the job sends nothing else and never touches the message.
func TestOperatorReactionOutbox(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) { reactionOutboxCases(t, db) })
	}
}

// rxFresh opens a database of the same dialect as db for one case alone
// (ClaimOutbox takes every workspace's jobs).
func rxFresh(t *testing.T, db *DB) *DB {
	t.Helper()
	if db.Dialect() == "postgres" {
		return PLOpenPostgresSchema(t, os.Getenv("PARLEY_TEST_POSTGRES_URL"))
	}
	fresh, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "rx.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Close() })
	return fresh
}

// rxFixture is one inbound message (provider id "wamid.IN") in a
// conversation on a fresh workspace, and two operators.
type rxFixture struct {
	*plFixture
	msg, conv string
	ann, bob  inbox.Actor
}

func rxSetup(t *testing.T, db *DB) rxFixture {
	t.Helper()
	f := plSetup(t, db)
	f.apply(t, f.ch, plMsgEv("wamid.IN", "15550001111", "hi"))
	ms := f.messages(t)
	return rxFixture{plFixture: f, msg: ms[0].ID, conv: ms[0].Conv,
		ann: inbox.Actor{Type: "agent", ID: "u-ann", Name: "Ann"}, bob: inbox.Actor{Type: "agent", ID: "u-bob", Name: "Bob"}}
}

// jobs are the message's reaction jobs, oldest first, with their payloads.
func (f rxFixture) jobs(t *testing.T, msgID string) ([]OutboxJob, []ReactionPayload) {
	t.Helper()
	all, err := f.db.OutboxJobs(context.Background(), msgID)
	if err != nil {
		t.Fatal(err)
	}
	var js []OutboxJob
	var ps []ReactionPayload
	for _, j := range all {
		if j.Kind != OutboxReaction {
			continue
		}
		var p ReactionPayload
		if err := json.Unmarshal([]byte(j.Payload), &p); err != nil {
			t.Fatalf("payload %q: %v", j.Payload, err)
		}
		js, ps = append(js, j), append(ps, p)
	}
	return js, ps
}

// pending is the single pending reaction job's payload (failing otherwise).
func (f rxFixture) pending(t *testing.T) ReactionPayload {
	t.Helper()
	js, ps := f.jobs(t, f.msg)
	var out []ReactionPayload
	for i, j := range js {
		if j.State == OutboxPending {
			out = append(out, ps[i])
		}
	}
	if len(out) != 1 {
		t.Fatalf("pending reaction jobs %+v, want exactly one", js)
	}
	return out[0]
}

func reactionOutboxCases(t *testing.T, db *DB) {
	ctx := context.Background()
	react := func(t *testing.T, f rxFixture, id string, by inbox.Actor, emoji string) inbox.Message {
		t.Helper()
		m, err := f.db.AddReaction(ctx, f.ws, id, inbox.Reaction{Emoji: emoji, By: by})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("stored and queued together", func(t *testing.T) {
		f := rxSetup(t, db)
		m := react(t, f, f.msg, f.ann, "👍")
		if len(m.Reactions) != 1 || m.Reactions[0].Emoji != "👍" || m.Reactions[0].By.ID != "u-ann" {
			t.Fatalf("reactions %+v", m.Reactions)
		}
		if p := f.pending(t); p != (ReactionPayload{TargetID: "wamid.IN", Emoji: "👍"}) {
			t.Fatalf("payload %+v", p)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM messages WHERE workspace_id = ?`, f.ws); n != 1 {
			t.Fatalf("%d messages: a reaction is no message", n)
		}
	})

	t.Run("message not sent yet: stays local (the API refuses it first)", func(t *testing.T) {
		f := rxSetup(t, db)
		out, err := db.CreateMessage(ctx, f.ws, inbox.NewMessage{ConversationID: f.conv, Sender: f.ann, Text: "queued", Outbox: true})
		if err != nil {
			t.Fatal(err)
		}
		react(t, f, out.ID, f.ann, "👍")
		if js, _ := f.jobs(t, out.ID); len(js) != 0 {
			t.Fatalf("jobs %+v: no provider id to react to", js)
		}
	})

	t.Run("private notes and contacts queue nothing", func(t *testing.T) {
		f := rxSetup(t, db)
		note, err := db.CreateMessage(ctx, f.ws, inbox.NewMessage{ConversationID: f.conv, Sender: f.ann, Text: "note", Private: true})
		if err != nil {
			t.Fatal(err)
		}
		react(t, f, note.ID, f.bob, "👀")
		react(t, f, f.msg, inbox.Actor{Type: "contact", ID: "c1", Name: "C"}, "❤️")
		if n := f.count(t, `SELECT COUNT(*) FROM outbox WHERE workspace_id = ?`, f.ws); n != 0 {
			t.Fatalf("%d outbox rows", n)
		}
	})

	t.Run("several operators: the account's reaction is the latest left", func(t *testing.T) {
		f := rxSetup(t, db)
		react(t, f, f.msg, f.ann, "👍")
		clock := f.db.now
		f.db.now = func() time.Time { return clock().Add(time.Second) } // Bob reacts later
		defer func() { f.db.now = clock }()
		react(t, f, f.msg, f.bob, "🎉")
		if js, _ := f.jobs(t, f.msg); len(js) != 1 {
			t.Fatalf("jobs %+v: a newer state supersedes a job not started", js)
		}
		if p := f.pending(t); p.Emoji != "🎉" {
			t.Fatalf("payload %+v", p)
		}
		if _, err := db.RemoveReaction(ctx, f.ws, f.msg, f.bob); err != nil {
			t.Fatal(err)
		}
		if p := f.pending(t); p.Emoji != "👍" {
			t.Fatalf("after Bob's removal %+v, want Ann's 👍 kept at the provider", p)
		}
		if _, err := db.RemoveReaction(ctx, f.ws, f.msg, f.ann); err != nil {
			t.Fatal(err)
		}
		if p := f.pending(t); p != (ReactionPayload{TargetID: "wamid.IN"}) {
			t.Fatalf("after the last removal %+v, want a removal", p)
		}
	})

	t.Run("removing a reaction never queued stays local", func(t *testing.T) {
		f := rxSetup(t, db)
		// A reaction from before reactions were delivered.
		if _, err := db.wdb.Exec(db.d.rebind(`INSERT INTO reactions (message_id, workspace_id, actor_type, actor_id, actor_name, emoji, created_at) VALUES (?, ?, 'agent', 'u-ann', 'Ann', '👍', 1)`), f.msg, f.ws); err != nil {
			t.Fatal(err)
		}
		m, err := db.RemoveReaction(ctx, f.ws, f.msg, f.ann)
		if err != nil || len(m.Reactions) != 0 {
			t.Fatalf("%v %+v", err, m.Reactions)
		}
		if js, _ := f.jobs(t, f.msg); len(js) != 0 {
			t.Fatalf("jobs %+v", js)
		}
	})

	t.Run("claimed, sent: the message does not change", func(t *testing.T) {
		db := rxFresh(t, db)
		f := rxSetup(t, db)
		before, _ := db.GetMessage(ctx, f.ws, f.msg)
		react(t, f, f.msg, f.ann, "👍")
		items, uncertain, err := db.ClaimOutbox(ctx, time.Minute, 10)
		if err != nil || len(items) != 1 || len(uncertain) != 0 {
			t.Fatalf("%v %+v %v", err, items, uncertain)
		}
		it := items[0]
		if it.Reaction == nil || it.Reaction.TargetID != "wamid.IN" || it.Reaction.Emoji != "👍" || it.MessageID != f.msg || it.To != "15550001111" {
			t.Fatalf("item %+v reaction %+v", it, it.Reaction)
		}
		if err := db.MarkOutboxSent(ctx, it, nil); err != nil {
			t.Fatal(err)
		}
		after, _ := db.GetMessage(ctx, f.ws, f.msg)
		if after.Status != before.Status || after.ExternalID != "wamid.IN" || after.Error != "" {
			t.Fatalf("message changed: %+v", after)
		}
		if js, _ := f.jobs(t, f.msg); len(js) != 1 || js[0].State != OutboxSent {
			t.Fatalf("jobs %+v", js)
		}
		if h, _ := db.ChannelHealth(ctx, f.ws, f.ch.ID); h.LastOutboundAt == nil {
			t.Fatalf("health %+v: a delivered reaction is outbound activity", h)
		}
	})

	t.Run("failed: surfaced on the job and the channel, not the message", func(t *testing.T) {
		db := rxFresh(t, db)
		f := rxSetup(t, db)
		react(t, f, f.msg, f.ann, "👍")
		items, _, err := db.ClaimOutbox(ctx, time.Minute, 10)
		if err != nil || len(items) != 1 {
			t.Fatalf("%v %d", err, len(items))
		}
		if err := db.FailOutbox(ctx, items[0], "(#131047) Re-engagement message"); err != nil {
			t.Fatal(err)
		}
		m, _ := db.GetMessage(ctx, f.ws, f.msg)
		if m.Status != inbox.MsgReceived || m.Error != "" || len(m.Reactions) != 1 {
			t.Fatalf("message %+v", m)
		}
		js, _ := f.jobs(t, f.msg)
		if len(js) != 1 || js[0].State != OutboxFailed || js[0].LastError != "(#131047) Re-engagement message" {
			t.Fatalf("jobs %+v", js)
		}
		if h, _ := db.ChannelHealth(ctx, f.ws, f.ch.ID); !strings.Contains(h.LastError, "reaction not delivered: (#131047)") {
			t.Fatalf("health %+v", h)
		}
		// Removing it later still reaches the provider (a reaction of ours was queued).
		if _, err := db.RemoveReaction(ctx, f.ws, f.msg, f.ann); err != nil {
			t.Fatal(err)
		}
		if p := f.pending(t); p.Emoji != "" {
			t.Fatalf("%+v", p)
		}
	})

	t.Run("interrupted reaction is due again, not uncertain", func(t *testing.T) {
		db := rxFresh(t, db)
		f := rxSetup(t, db)
		react(t, f, f.msg, f.ann, "👍")
		if items, _, err := db.ClaimOutbox(ctx, time.Millisecond, 10); err != nil || len(items) != 1 {
			t.Fatalf("%v %d", err, len(items))
		}
		time.Sleep(5 * time.Millisecond) // the node died: its lease expires
		items, uncertain, err := db.ClaimOutbox(ctx, time.Minute, 10)
		if err != nil || len(uncertain) != 0 {
			t.Fatalf("%v uncertain %v", err, uncertain)
		}
		if len(items) != 1 || items[0].Reaction == nil || items[0].Attempts != 2 {
			t.Fatalf("items %+v: the reaction must be claimed again", items)
		}
		if m, _ := db.GetMessage(ctx, f.ws, f.msg); m.Status != inbox.MsgReceived {
			t.Fatalf("message %+v", m)
		}
	})

	t.Run("a retrying reaction does not hold up the conversation's sends", func(t *testing.T) {
		db := rxFresh(t, db)
		f := rxSetup(t, db)
		react(t, f, f.msg, f.ann, "👍")
		items, _, err := db.ClaimOutbox(ctx, time.Minute, 10)
		if err != nil || len(items) != 1 {
			t.Fatalf("%v %d", err, len(items))
		}
		if err := db.RetryOutboxLater(ctx, items[0], "provider down", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		out, err := db.CreateMessage(ctx, f.ws, inbox.NewMessage{ConversationID: f.conv, Sender: f.ann, Text: "answer", Outbox: true})
		if err != nil {
			t.Fatal(err)
		}
		items, _, err = db.ClaimOutbox(ctx, time.Minute, 10)
		if err != nil || len(items) != 1 || items[0].MessageID != out.ID || items[0].Reaction != nil {
			t.Fatalf("%v %+v: the message must go out", err, items)
		}
		// OutboxState and RetryMessage see the message's own row only.
		if st, _, _, err := db.OutboxState(ctx, f.msg); !inbox.IsCode(err, inbox.NotFound) {
			t.Fatalf("OutboxState of the reacted message: %s %v", st, err)
		}
	})

	t.Run("an in-flight reaction goes before the next one on the message", func(t *testing.T) {
		db := rxFresh(t, db)
		f := rxSetup(t, db)
		react(t, f, f.msg, f.ann, "👍")
		first, _, err := db.ClaimOutbox(ctx, time.Minute, 10)
		if err != nil || len(first) != 1 {
			t.Fatalf("%v %d", err, len(first))
		}
		if _, err := db.RemoveReaction(ctx, f.ws, f.msg, f.ann); err != nil {
			t.Fatal(err)
		}
		if js, _ := f.jobs(t, f.msg); len(js) != 2 || js[0].State != OutboxSending {
			t.Fatalf("jobs %+v: the job in flight stays", js)
		}
		if again, _, err := db.ClaimOutbox(ctx, time.Minute, 10); err != nil || len(again) != 0 {
			t.Fatalf("%v %+v: the removal must wait for the job in flight", err, again)
		}
		if err := db.MarkOutboxSent(ctx, first[0], nil); err != nil {
			t.Fatal(err)
		}
		next, _, err := db.ClaimOutbox(ctx, time.Minute, 10)
		if err != nil || len(next) != 1 || next[0].Reaction == nil || next[0].Reaction.Emoji != "" {
			t.Fatalf("%v %+v", err, next)
		}
	})
}
