package store

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

// A poll that can claim nothing opens no write transaction (on SQLite it
// would hold the single writer and empty the inbound senders' cache): not
// when nothing is queued, and not when the only due send waits behind an
// earlier send of its conversation that is retrying later.
func TestClaimOutboxIdleWritesNothing(t *testing.T) {
	for name, db := range plBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := plSetup(t, db)
			f.apply(t, f.ch, plMsgEv("in1", "555", "question"))
			claim := func(want int) []OutboxItem {
				t.Helper()
				gen := db.writeGen.Load()
				items, _, err := db.ClaimOutbox(ctx, time.Minute, 10)
				if err != nil || len(items) != want {
					t.Fatalf("claim: %v %d items, want %d", err, len(items), want)
				}
				if want == 0 && db.writeGen.Load() != gen {
					t.Fatal("a poll that claimed nothing opened a write transaction")
				}
				return items
			}
			claim(0)
			conv := f.messages(t)[0].Conv
			for _, text := range []string{"first", "second"} {
				if _, err := db.CreateMessage(ctx, f.ws, inbox.NewMessage{ConversationID: conv, Sender: inbox.Actor{Type: "agent"}, Text: text, Outbox: true}); err != nil {
					t.Fatal(err)
				}
			}
			first := claim(1)[0] // the first; the second waits behind it
			if err := db.RetryOutboxLater(ctx, first, "try later", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			claim(0) // the second is due but must wait: nothing to claim
		})
	}
}
