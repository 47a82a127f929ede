package store

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// An inbound transaction of channel 2 that takes the write
// connection after an inbound transaction of channel 1 committed but before
// that one updated plCache (the gap is db.hook, prepareWanted, the return)
// reads the cache's stale view of a contact both channels share.
func TestPipelineCacheCommitGap(t *testing.T) {
	t.Run("gap", func(t *testing.T) { plCacheGap(t, false) })
	t.Run("control: after the cache update", func(t *testing.T) { plCacheGap(t, true) })
}

func plCacheGap(t *testing.T, control bool) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "c.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := plSetup(t, db)
	const phone = "+79990001122"
	wa := func(ext, name string) channel.Event { // WhatsApp-like: identifier is the phone
		return channel.Event{Type: channel.EventMessage, ExternalID: ext, ChatID: "79990001122", Direction: "inbound", Kind: inbox.KindText,
			Sender: channel.Party{Identifier: "79990001122", Phone: phone, Name: name}, Text: "hi"}
	}
	sms := func(ext string) channel.Event { // another channel, same phone, no name
		return channel.Event{Type: channel.EventMessage, ExternalID: ext, ChatID: "sms-1", Direction: "inbound", Kind: inbox.KindText,
			Sender: channel.Party{Identifier: "sms-1", Phone: phone}, Text: "hi"}
	}
	batch := func(ch inbox.Channel, ev channel.Event) {
		t.Helper()
		items := []InboundBatchItem{{Entry: InboundEntry{ID: newID(), WorkspaceID: f.ws, ChannelID: ch.ID, ReceivedAt: f.t0, State: InboundPending}, Events: []channel.Event{ev}}}
		if _, err := db.ApplyInboundBatch(ctx, ch, items); err != nil {
			t.Fatal(err)
		}
	}
	// Contact C (no name) known on both channels, in the cache.
	batch(f.ch, wa("w1", ""))
	batch(f.ch2, sms("s1"))
	batch(f.ch, wa("w2", ""))
	batch(f.ch2, sms("s2"))

	// Channel 1's next batch fills C's name. Channel 2's worker gets the
	// write connection right after that commit: simulated inside the hook,
	// which runs after the commit and before the cache update.
	var conv2 inbox.Conversation
	var nested []inbox.Change
	calls := 0
	db.hook = func(changes []inbox.Change) {
		calls++
		switch calls {
		case 1: // channel 1's transaction committed; its cache update has not run
			if !control {
				batch(f.ch2, sms("s3"))
			}
		case 2: // channel 2's transaction
			nested = changes
		}
	}
	batch(f.ch, wa("w3", "Alice"))
	if control {
		batch(f.ch2, sms("s3"))
	}

	var got inbox.Conversation
	for _, c := range nested {
		if c.Entity == inbox.EntityConversation {
			if err := json.Unmarshal(c.Data, &got); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got.ID == "" {
		t.Fatalf("no conversation change from channel 2's transaction (%d calls)", calls)
	}
	conv2 = f.conv(t, got.ID)
	if conv2.Contact.Name != "Alice" {
		t.Fatalf("setup: contact name in the database is %q", conv2.Contact.Name)
	}
	if got.Contact.Name != conv2.Contact.Name {
		t.Errorf("channel 2's change row shows contact name %q, the API %q: built from the stale cached conversation", got.Contact.Name, conv2.Contact.Name)
	}
	var sender string
	if err := db.rdb.QueryRow(`SELECT sender_name FROM messages WHERE external_id = 's3'`).Scan(&sender); err != nil {
		t.Fatal(err)
	}
	if sender != "Alice" {
		t.Errorf("message s3 stored with sender_name %q, want %q (stale cached identity)", sender, "Alice")
	}
}
