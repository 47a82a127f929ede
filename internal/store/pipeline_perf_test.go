package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// ApplyInboundBatchUntil commits the items applied before stop said so; the
// rest stay pending and apply later, in order, with contiguous change seqs.
func TestApplyInboundBatchUntil(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := plSetup(t, db)
			var entries []InboundEntry
			for i := 0; i < 5; i++ {
				entries = append(entries, InboundEntry{WorkspaceID: f.ws, ChannelID: f.ch.ID, Body: []byte(fmt.Sprintf(`{"i":%d}`, i)), ReceivedAt: f.t0})
			}
			if err := db.AppendInbound(ctx, entries); err != nil {
				t.Fatal(err)
			}
			pending, err := db.PendingInbound(ctx, f.ch.ID, 100)
			if err != nil || len(pending) != 5 {
				t.Fatalf("pending %d, %v", len(pending), err)
			}
			items := make([]InboundBatchItem, len(pending))
			for i, e := range pending {
				// Two entries of the same chat: the conversation is emitted once per transaction.
				items[i] = InboundBatchItem{Entry: e, Events: []channel.Event{plMsgEv(fmt.Sprint("u", i), fmt.Sprint("c", i/2), fmt.Sprint("hi ", i))}}
			}
			head := func() int64 {
				b, err := db.Changes(ctx, f.ws, "", 1000)
				if err != nil {
					t.Fatal(err)
				}
				if len(b.Changes) == 0 {
					return 0
				}
				return b.Changes[len(b.Changes)-1].Seq
			}
			before := head()
			asked := 0
			n, res, err := db.ApplyInboundBatchUntil(ctx, f.ch, items, ApplyOptions{Stop: func(applied int) bool { asked++; return applied >= 2 }})
			if err != nil || n != 2 || res.NewMessages != 2 || asked != 2 {
				t.Fatalf("applied %d (asked %d), %+v, %v; want 2", n, asked, res, err)
			}
			left, err := db.PendingInbound(ctx, f.ch.ID, 100)
			if err != nil || len(left) != 3 || left[0].ID != pending[2].ID {
				t.Fatalf("left %d, %v; want the last 3 pending", len(left), err)
			}
			// 1 contact, 1 conversation (both entries are chat c0), 2 messages.
			if got := head() - before; got != 4 {
				t.Fatalf("%d change rows for the first transaction, want 4", got)
			}
			n, res, err = db.ApplyInboundBatchUntil(ctx, f.ch, items[2:], ApplyOptions{})
			if err != nil || n != 3 || res.NewMessages != 3 {
				t.Fatalf("applied %d, %+v, %v; want 3", n, res, err)
			}
			if left, _ := db.PendingInbound(ctx, f.ch.ID, 100); len(left) != 0 {
				t.Fatalf("%d still pending", len(left))
			}
			// Replaying everything creates nothing.
			n, res, err = db.ApplyInboundBatchUntil(ctx, f.ch, items, ApplyOptions{})
			if err != nil || n != 5 || res.NewMessages != 0 || res.Unchanged != 5 {
				t.Fatalf("replay: %d, %+v, %v", n, res, err)
			}
			b, err := db.Changes(ctx, f.ws, "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			msgs := 0
			for i, c := range b.Changes {
				if i > 0 && c.Seq != b.Changes[i-1].Seq+1 {
					t.Fatalf("seq gap at %d: %d after %d", i, c.Seq, b.Changes[i-1].Seq)
				}
				if c.Entity == inbox.EntityMessage {
					msgs++
				}
			}
			if msgs != 5 {
				t.Fatalf("%d message changes, want 5", msgs)
			}
		})
	}
}

// A cached statement is not reused while its own rows are still being read:
// the nested use of the same SQL text runs on its own statement.
func TestStmtCacheNestedQuery(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "c.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const q = `SELECT value FROM json_each(?) ORDER BY key`
	run := func() []string {
		var got []string
		err := db.write(ctx, func(tx *tx) error {
			rows, err := tx.query(q, `["a","b","c"]`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var v string
				if err := rows.Scan(&v); err != nil {
					return err
				}
				var inner string
				if err := tx.queryRow(q, `["`+v+v+`"]`).Scan(&inner); err != nil {
					return err
				}
				got = append(got, v+inner)
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for i := 0; i < 3; i++ { // the first run fills the cache, the next ones use it
		if got := fmt.Sprint(run()); got != "[aaa bbb ccc]" {
			t.Fatalf("run %d: %s", i, got)
		}
	}
	db.stmts.mu.Lock()
	cached := db.stmts.stmts[q] != nil
	db.stmts.mu.Unlock()
	if !cached {
		t.Fatal("statement was not cached")
	}
}
