package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// plFailing returns a context, and a Stop that cancels it after the first
// item of a batch: the batch's transaction then fails (database/sql rolls
// back a transaction whose context ends, and its Commit reports it).
func plFailing(ctx context.Context) (context.Context, func(int) bool) {
	ctx, cancel := context.WithCancel(ctx)
	return ctx, func(int) bool { cancel(); return false }
}

// plItems makes one entry per event on f.ch.
func plItems(f *plFixture, events ...channel.Event) []InboundBatchItem {
	items := make([]InboundBatchItem, len(events))
	for i, ev := range events {
		items[i] = InboundBatchItem{Entry: InboundEntry{ID: newID(), WorkspaceID: f.ws, ChannelID: f.ch.ID, ReceivedAt: f.t0, State: InboundPending},
			Events: []channel.Event{ev}}
	}
	return items
}

// plBatch applies events, one entry each, as one batch on f.ch.
func plBatch(t *testing.T, f *plFixture, events ...channel.Event) ApplyResult {
	t.Helper()
	res, err := f.db.ApplyInboundBatch(context.Background(), f.ch, plItems(f, events...))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The senders' cache saves the lookups of known senders and never serves
// what another writer changed: an operator's edit in this process, or a
// commit by another process on the same file.
func TestPipelineCache(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := Open(ctx, "sqlite:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := plSetup(t, db)
	senders := []string{"1001", "1002", "1003", "1004"}
	batch := func(tag string) {
		t.Helper()
		var evs []channel.Event
		for _, s := range senders {
			evs = append(evs, plMsgEv(tag+s, s, "hi "+tag))
		}
		if res := plBatch(t, f, evs...); res.NewMessages != len(senders) {
			t.Fatalf("batch %s: %+v", tag, res)
		}
	}
	stmts := func(tag string) int64 {
		t.Helper()
		n0 := statements.Load()
		batch(tag)
		return statements.Load() - n0
	}
	batch("a") // creates the contacts and conversations
	cold := stmts("b")
	warm := stmts("c")
	if warm >= cold {
		t.Fatalf("known senders took %d statements, as many as looking them up (%d): the cache is not used", warm, cold)
	}

	convOf := func(sender string) inbox.Conversation {
		t.Helper()
		var id string
		if err := db.rdb.QueryRow(`SELECT c.id FROM conversations c JOIN contact_identities i ON i.contact_id = c.contact_id WHERE i.identifier = ? AND c.channel_id = ?`,
			sender, f.ch.ID).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return f.conv(t, id)
	}
	// An operator resolves a conversation: the next message reopens it.
	c := convOf("1001")
	if _, err := db.UpdateConversation(ctx, f.ws, "", c.ID, inbox.ConversationPatch{Status: inbox.Some(inbox.StatusResolved)}); err != nil {
		t.Fatal(err)
	}
	batch("d")
	if got := convOf("1001"); got.ID != c.ID || got.Status != inbox.StatusOpen {
		t.Fatalf("after an operator resolved it, a message left the conversation %s %q (want %s reopened)", got.ID, got.Status, c.ID)
	}

	// Another process resolves it: the same.
	other, err := Open(ctx, "sqlite:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.UpdateConversation(ctx, f.ws, "", c.ID, inbox.ConversationPatch{Status: inbox.Some(inbox.StatusResolved)}); err != nil {
		t.Fatal(err)
	}
	other.Close()
	batch("e")
	if got := convOf("1001"); got.Status != inbox.StatusOpen {
		t.Fatalf("after another process resolved it, a message left the conversation %q", got.Status)
	}

	// An operator clears a contact's name: the next message fills it again
	// (a stale cached name would skip the fill) and uses it as sender name.
	cid := convOf("1002").Contact.ID
	if _, err := db.UpdateContact(ctx, f.ws, cid, inbox.ContactPatch{Name: inbox.Some("")}); err != nil {
		t.Fatal(err)
	}
	batch("f")
	var name string
	if err := db.rdb.QueryRow(`SELECT name FROM contacts WHERE id = ?`, cid).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "Cust 1002" {
		t.Fatalf("contact name after an operator cleared it and the customer wrote: %q", name)
	}

	// A contact named by a message on another channel (linked by phone):
	// the next message here takes the new name as its sender name.
	nameless := channel.Event{Type: channel.EventMessage, ExternalID: "h1", ChatID: "4001", Direction: "inbound", Kind: inbox.KindText,
		Sender: channel.Party{Identifier: "4001", Phone: "+49 151 1234 4001"}, Text: "no name"}
	plBatch(t, f, nameless)
	cached := nameless
	cached.ExternalID = "h2"
	plBatch(t, f, cached) // (a sender is cached by the batch after the one creating it)
	named := nameless
	named.ExternalID, named.ChatID, named.Sender = "h3", "tg-4001", channel.Party{Identifier: "tg-4001", Name: "Bob", Phone: "+4915112344001"}
	if _, err := db.ApplyInboundBatch(ctx, f.ch2, []InboundBatchItem{{Entry: InboundEntry{ID: newID(), WorkspaceID: f.ws, ChannelID: f.ch2.ID, ReceivedAt: f.t0}, Events: []channel.Event{named}}}); err != nil {
		t.Fatal(err)
	}
	again := nameless
	again.ExternalID = "h4"
	plBatch(t, f, again)
	var sender string
	if err := db.rdb.QueryRow(`SELECT sender_name FROM messages WHERE external_id = ?`, "h4").Scan(&sender); err != nil {
		t.Fatal(err)
	}
	if sender != "Bob" {
		t.Fatalf("sender name after the contact was named on another channel: %q", sender)
	}

	// A rolled-back batch teaches the cache nothing: a new sender whose
	// batch fails is created by the next batch, once.
	fctx, stop := plFailing(ctx)
	if _, _, err := db.ApplyInboundBatchUntil(fctx, f.ch, plItems(f, plMsgEv("g1", "2001", "new"), plMsgEv("g2", "2002", "new")), ApplyOptions{Stop: stop}); err == nil {
		t.Fatal("a cancelled batch committed")
	}
	plBatch(t, f, plMsgEv("g3", "2001", "again"))
	if n := f.count(t, `SELECT COUNT(*) FROM contact_identities WHERE channel_id = ? AND identifier = ?`, f.ch.ID, "2001"); n != 1 {
		t.Fatalf("identities of the new sender: %d", n)
	}
	if n := f.count(t, `SELECT COUNT(*) FROM conversations c JOIN contact_identities i ON i.contact_id = c.contact_id WHERE i.identifier = ? AND c.channel_id = ?`, "2001", f.ch.ID); n != 1 {
		t.Fatalf("conversations of the new sender: %d", n)
	}
}

// Entries given to ApplyOptions.Append are appended in the batch's
// transaction: with it, or not at all.
func TestApplyOptionsAppend(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := plSetup(t, db)
			logged := func() int {
				return f.count(t, `SELECT COUNT(*) FROM inbound_log WHERE channel_id = ?`, f.ch.ID)
			}
			acks := func(n int) func() []InboundEntry {
				return func() []InboundEntry {
					var out []InboundEntry
					for i := range n {
						out = append(out, InboundEntry{WorkspaceID: f.ws, ChannelID: f.ch.ID, Body: []byte(fmt.Sprintf(`{"ack":%d}`, i))})
					}
					return out
				}
			}
			ok := []InboundBatchItem{{Entry: InboundEntry{ID: newID(), WorkspaceID: f.ws, ChannelID: f.ch.ID, ReceivedAt: f.t0}, Events: []channel.Event{plMsgEv("x1", "3001", "hi")}}}
			if _, _, err := db.ApplyInboundBatchUntil(ctx, f.ch, ok, ApplyOptions{Append: acks(3)}); err != nil {
				t.Fatal(err)
			}
			if n := logged(); n != 3 {
				t.Fatalf("entries appended with a committed batch: %d, want 3", n)
			}
			called := false
			fctx, stop := plFailing(ctx)
			if _, _, err := db.ApplyInboundBatchUntil(fctx, f.ch, plItems(f, plMsgEv("x2", "3002", "a"), plMsgEv("x3", "3003", "b")),
				ApplyOptions{Stop: stop, Append: func() []InboundEntry { called = true; return acks(2)() }}); err == nil {
				t.Fatal("a cancelled batch committed")
			}
			if n := logged(); n != 3 || called {
				t.Fatalf("a failed batch appended its entries (log %d, taken %v)", n, called)
			}
		})
	}
}
