package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

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

// A merged contact's messages, in its own chats and in groups it wrote in,
// take the surviving contact as their sender.
func TestMergeMovesMessageSenders(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := plSetup(t, db)
			group := func(ext, from string) channel.Event {
				ev := plMsgEv(ext, from, "in the group")
				ev.IsGroup, ev.ChatID, ev.GroupTitle = true, "g-1", "Team"
				return ev
			}
			plBatch(t, f, plMsgEv("m1", "5001", "a"), plMsgEv("m2", "5002", "b"), group("m3", "5002"), group("m4", "5003"), plMsgEv("m5", "5002", "c"))
			contact := func(ident string) string {
				var id string
				if err := db.rdb.QueryRow(db.d.rebind(`SELECT contact_id FROM contact_identities WHERE channel_id = ? AND identifier = ?`), f.ch.ID, ident).Scan(&id); err != nil {
					t.Fatal(err)
				}
				return id
			}
			a, b, c := contact("5001"), contact("5002"), contact("5003")
			if _, err := db.MergeContacts(ctx, f.ws, inbox.MergeInput{PrimaryID: a, MergeIDs: []string{b}}); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				sender string
				want   int
			}{{a, 4}, {b, 0}, {c, 1}} {
				if n := f.count(t, `SELECT COUNT(*) FROM messages WHERE workspace_id = ? AND sender_type = 'contact' AND sender_id = ?`, f.ws, tc.sender); n != tc.want {
					t.Errorf("messages sent by %s after the merge: %d, want %d", tc.sender, n, tc.want)
				}
			}
		})
	}
}

// The change rows a batch makes without reading its entities back (new
// messages, bumped conversations from the cache) are exactly what the API
// reads: after a varied stream of batches, the last change row of every
// message and conversation equals the entity read now.
func TestPipelineChangeRowsMatchReads(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := plSetup(t, db)
			media := plMsgEv("p2", "6001", "look")
			media.Kind, media.Attachments = inbox.KindImage, []channel.Media{{Kind: inbox.KindImage, MimeType: "image/jpeg", Filename: "a.jpg", Size: 1234, ProviderRef: "media-1", Width: 10, Height: 20}}
			loc := plMsgEv("p3", "6002", "")
			loc.Kind, loc.Location = inbox.KindLocation, &inbox.Location{Latitude: 52.52, Longitude: 13.405, Name: "Berlin"}
			card := plMsgEv("p4", "6001", "")
			card.Kind, card.Content = inbox.KindContacts, []byte(`[{"name":{"formatted_name":"Ann"}}]`)
			reply := plMsgEv("p5", "6002", "re")
			reply.ReplyToID = "p3"
			odd := plMsgEv("p6", "6003", "")
			odd.Kind, odd.Raw = inbox.KindUnsupported, []byte(`{"type":"future"}`)
			grp := func(ext, from string) channel.Event {
				ev := plMsgEv(ext, from, "hi all")
				ev.IsGroup, ev.ChatID, ev.GroupTitle = true, "g-7", "Crew"
				return ev
			}
			react := channel.Event{Type: channel.EventReaction, TargetID: "p9", Emoji: "👍", Sender: channel.Party{Identifier: "6001"}, ChatID: "6001"}
			late := plMsgEv("p9", "6001", "target after its reaction")
			edit := channel.Event{Type: channel.EventEdit, TargetID: "p1", Text: "hello (edited)", Sender: channel.Party{Identifier: "6001"}, ChatID: "6001"}
			echo := plEchoEv("p10", "6002", "our answer")
			status := plStatusEv("p10", inbox.MsgDelivered, "")
			nameless := channel.Event{Type: channel.EventMessage, ExternalID: "p11", ChatID: "6004", Direction: "inbound", Kind: inbox.KindText,
				Sender: channel.Party{Identifier: "6004", Phone: "+49 151 0000 6004"}, Text: "no name yet"}
			plBatch(t, f, plMsgEv("p1", "6001", "hello"), media, loc)
			plBatch(t, f, card, reply, odd, grp("p7", "6001"), grp("p8", "6002"))
			plBatch(t, f, react, plMsgEv("p12", "6002", "more"), nameless)
			plBatch(t, f, late, edit, echo, plMsgEv("p13", "6003", "again"))
			plBatch(t, f, status, plMsgEv("p14", "6001", "and again"), plMsgEv("p15", "6004", "still no name"), grp("p16", "6003"))
			// The nameless contact is named on another channel (a pipeline
			// write): its conversation here must not keep the old name.
			named := nameless
			named.ExternalID, named.ChatID, named.Sender = "q1", "tg-6004", channel.Party{Identifier: "tg-6004", Name: "Dora", Phone: "+4915100006004"}
			if _, err := db.ApplyInboundBatch(ctx, f.ch2, plItems(&plFixture{ws: f.ws, ch: f.ch2}, named)); err != nil {
				t.Fatal(err)
			}
			plBatch(t, f, plMsgEv("p17", "6004", "named now"), plMsgEv("p18", "6001", "last"))
			// An operator resolves a conversation; the next message reopens it.
			var resolved string
			if err := db.rdb.QueryRow(db.d.rebind(`SELECT conversation_id FROM messages WHERE external_id = ?`), "p18").Scan(&resolved); err != nil {
				t.Fatal(err)
			}
			if _, err := db.UpdateConversation(ctx, f.ws, "", resolved, inbox.ConversationPatch{Status: inbox.Some(inbox.StatusResolved)}); err != nil {
				t.Fatal(err)
			}
			plBatch(t, f, plMsgEv("p19", "6001", "back"), plMsgEv("p20", "6002", "also"))
			plBatch(t, f, plMsgEv("p21", "6001", "cached again"), plMsgEv("p22", "6002", "and here"))
			// History delivered late (an older timestamp) does not take over
			// the conversation's last message; a newer one does.
			old, newer := plMsgEv("p23", "6001", "from an hour ago"), plMsgEv("p24", "6002", "from the future")
			old.Timestamp, newer.Timestamp = f.t0.Add(-time.Hour), f.t0.Add(time.Hour)
			plBatch(t, f, old, newer, plMsgEv("p25", "6003", "now"))

			last := map[string]inbox.Change{}
			for since := ""; ; {
				b, err := db.Changes(ctx, f.ws, since, 1000)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range b.Changes {
					last[c.Entity+":"+c.ID] = c
					since = fmt.Sprint(c.Seq)
				}
				if len(b.Changes) < 1000 {
					break
				}
			}
			checked := map[string]int{}
			for _, c := range last {
				var now any
				var err error
				switch c.Entity {
				case inbox.EntityMessage:
					now, err = db.GetMessage(ctx, f.ws, c.ID)
				case inbox.EntityConversation:
					now, err = db.GetConversation(ctx, f.ws, "", c.ID)
				default:
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				want, _ := json.Marshal(now)
				if !jsonEqual(t, c.Data, want) {
					t.Errorf("%s %s: last change row\n%s\nbut the API reads\n%s", c.Entity, c.ID, c.Data, want)
				}
				checked[c.Entity]++
			}
			if checked[inbox.EntityMessage] < 20 || checked[inbox.EntityConversation] < 5 {
				t.Fatalf("checked %v", checked)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// A new sender seen twice in one batch (under two names) is one contact with
// one conversation: what the batch learned in advance ("not known") stops
// holding once the first message created it.
func TestNewSenderTwiceInABatch(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) {
			f := plSetup(t, db)
			a, b := plMsgEv("n1", "7001", "first"), plMsgEv("n2", "7001", "second")
			b.Sender.Name = "Renamed"
			if res := plBatch(t, f, a, b, plMsgEv("n3", "7002", "other")); res.NewMessages != 3 {
				t.Fatalf("%+v", res)
			}
			if n := f.count(t, `SELECT COUNT(DISTINCT contact_id) FROM contact_identities WHERE channel_id = ? AND identifier = ?`, f.ch.ID, "7001"); n != 1 {
				t.Fatalf("contacts of the sender: %d", n)
			}
			if n := f.count(t, `SELECT COUNT(*) FROM contacts WHERE workspace_id = ?`, f.ws); n != 2 {
				t.Fatalf("contacts in the workspace: %d, want 2 (no orphan)", n)
			}
			if n := f.count(t, `SELECT COUNT(DISTINCT conversation_id) FROM messages WHERE workspace_id = ? AND external_id IN ('n1', 'n2')`, f.ws); n != 1 {
				t.Fatalf("conversations of the sender: %d", n)
			}
		})
	}
}
