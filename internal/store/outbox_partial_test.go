package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

// TestFailOutboxPartly: a send of several parts that failed after some went
// out fails the message and keeps the sent parts' ids on it, in one
// transaction with one change row of the message; later statuses and
// echoes of those parts find the message, on both databases.
func TestFailOutboxPartly(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) { failPartlyCases(t, db) })
	}
}

const partialReason = "partially sent: Bad Request: message text is empty"

// partialFixture is an outbound message of ours, claimed for sending, in a
// conversation with customer 444 on a fresh database.
type partialFixture struct {
	*plFixture
	item OutboxItem
}

func partialSetup(t *testing.T, db *DB) partialFixture {
	t.Helper()
	ctx := context.Background()
	f := plSetup(t, rxFresh(t, db))
	f.apply(t, f.ch, plMsgEv("in1", "444", "question"))
	m, err := f.db.CreateMessage(ctx, f.ws, inbox.NewMessage{ConversationID: f.messages(t)[0].Conv, Sender: inbox.Actor{Type: "agent"}, Text: "long answer", Outbox: true})
	if err != nil {
		t.Fatal(err)
	}
	items, _, err := f.db.ClaimOutbox(ctx, time.Minute, 10)
	if err != nil || len(items) != 1 || items[0].MessageID != m.ID {
		t.Fatalf("claim %v %+v", err, items)
	}
	return partialFixture{plFixture: f, item: items[0]}
}

// cursor is the workspace's change cursor now.
func (f partialFixture) cursor(t *testing.T) string {
	t.Helper()
	b, err := f.db.Changes(context.Background(), f.ws, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return b.Cursor
}

// changes are the workspace's change rows after cursor.
func (f partialFixture) changes(t *testing.T, cursor string) []inbox.Change {
	t.Helper()
	b, err := f.db.Changes(context.Background(), f.ws, cursor, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return b.Changes
}

// failed checks that the message is failed with the partial reason and
// holds ext as its provider id.
func (f partialFixture) failed(t *testing.T, ext string) inbox.Message {
	t.Helper()
	m, err := f.db.GetMessage(context.Background(), f.ws, f.item.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != inbox.MsgFailed || m.Error != partialReason || m.ExternalID != ext {
		t.Fatalf("message status %q error %q external_id %q, want failed, %q, %q", m.Status, m.Error, m.ExternalID, partialReason, ext)
	}
	return m
}

// statuses are the message's recorded statuses.
func (f partialFixture) statuses(t *testing.T) map[string]bool {
	t.Helper()
	rows, err := f.db.rdb.Query(f.db.d.rebind(`SELECT status FROM message_statuses WHERE message_id = ?`), f.item.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out[s] = true
	}
	return out
}

func failPartlyCases(t *testing.T, db *DB) {
	ctx := context.Background()

	t.Run("ids kept, one change row, later status finds the message", func(t *testing.T) {
		f := partialSetup(t, db)
		cur := f.cursor(t)
		if err := f.db.FailOutboxPartly(ctx, f.item, []string{"444:101", "444:102"}, partialReason); err != nil {
			t.Fatal(err)
		}
		f.failed(t, "444:101")
		if st, _, lastErr, err := f.db.OutboxState(ctx, f.item.MessageID); err != nil || st != OutboxFailed || lastErr != partialReason {
			t.Fatalf("outbox %v %q %q", err, st, lastErr)
		}
		if h, _ := f.db.ChannelHealth(ctx, f.ws, f.ch.ID); h.LastError != "send failed: "+partialReason || h.LastOutboundAt == nil {
			t.Fatalf("channel last error %q, last outbound %v (some parts went out)", h.LastError, h.LastOutboundAt)
		}
		var rows []inbox.Change
		for _, c := range f.changes(t, cur) {
			if c.Entity == inbox.EntityMessage {
				rows = append(rows, c)
			}
		}
		if len(rows) != 1 || rows[0].ID != f.item.MessageID || rows[0].Op != inbox.OpUpsert {
			t.Fatalf("message change rows %+v, want one upsert of the message", rows)
		}
		var emitted inbox.Message
		if err := json.Unmarshal(rows[0].Data, &emitted); err != nil {
			t.Fatal(err)
		}
		if emitted.Status != inbox.MsgFailed || emitted.Error != partialReason || emitted.ExternalID != "444:101" {
			t.Fatalf("emitted %+v, want its final state", emitted)
		}

		// A failed message keeps its status (failed is terminal); the
		// delivery is recorded on it, and nothing waits for another target.
		for _, ext := range []string{"444:101", "444:102"} {
			r := f.apply(t, f.ch, plStatusEv(ext, inbox.MsgDelivered, ""))
			if r.Pending != 0 || r.Unchanged != 1 {
				t.Fatalf("status for %s: %+v, want the message found and left failed", ext, r)
			}
		}
		f.failed(t, "444:101")
		if st := f.statuses(t); !st[inbox.MsgDelivered] || !st[inbox.MsgFailed] {
			t.Fatalf("statuses %v, want delivered recorded", st)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM pending_events WHERE channel_id = ?`, f.ch.ID); n != 0 {
			t.Fatalf("%d pending events", n)
		}
		// The echo of a sent part is our message, not a new one.
		if r := f.apply(t, f.ch, plEchoEv("444:101", "444", "long")); r.NewMessages != 0 {
			t.Fatalf("echo of a sent part created a message: %+v", r)
		}
	})

	t.Run("status and echo that came first", func(t *testing.T) {
		f := partialSetup(t, db)
		if r := f.apply(t, f.ch, plStatusEv("444:101", inbox.MsgDelivered, "")); r.Pending != 1 {
			t.Fatalf("early status %+v, want kept", r)
		}
		f.apply(t, f.ch, plEchoEv("444:102", "444", "part two"))
		if n := len(f.messages(t)); n != 3 {
			t.Fatalf("%d messages before recording", n)
		}
		if err := f.db.FailOutboxPartly(ctx, f.item, []string{"444:101", "444:102"}, partialReason); err != nil {
			t.Fatal(err)
		}
		f.failed(t, "444:101")
		if st := f.statuses(t); !st[inbox.MsgDelivered] {
			t.Fatalf("statuses %v, want the early delivery applied", st)
		}
		if n := f.count(t, `SELECT COUNT(*) FROM pending_events WHERE channel_id = ?`, f.ch.ID); n != 0 {
			t.Fatalf("%d pending events", n)
		}
		if n := len(f.messages(t)); n != 2 {
			t.Fatalf("%d messages: the echo copy of part two should go", n)
		}
	})

	t.Run("no id: a plain failure", func(t *testing.T) {
		f := partialSetup(t, db)
		if err := f.db.FailOutboxPartly(ctx, f.item, []string{""}, partialReason); err != nil {
			t.Fatal(err)
		}
		f.failed(t, "")
	})
}
