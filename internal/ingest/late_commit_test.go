package ingest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/parleyhq/parley/internal/store"
)

// On PostgreSQL several nodes append, so an entry's id (minted when its
// node's group commit began) can be lower than the id of an entry another
// node committed earlier. Were the next page read after the last id read,
// such an entry would be skipped for as long as the channel stays busy (and
// then applied out of order): on PostgreSQL a processor reads from the
// start of the channel's pending entries each round.
func TestLateCommittedEntryIsNotSkipped(t *testing.T) {
	e := newEnvURL(t, true, 0, pgURL(t))
	ctx := context.Background()
	early := uuid.Must(uuid.NewV7()).String() // another node's group commit begins: its id

	var stop atomic.Bool
	streamDone := make(chan struct{})
	go func() { // steady traffic on the channel, through this node
		defer close(streamDone)
		for i := 0; !stop.Load(); i++ {
			e.post(t, payload(testEvent{ID: fmt.Sprint("s", i), From: "1", Text: "x"}), true)
			time.Sleep(3 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	// ...and commits now, after the processor has read past its id.
	lateAt := time.Now()
	if err := e.db.AppendInbound(ctx, []store.InboundEntry{{ID: early, WorkspaceID: e.ws, ChannelID: e.ch.ID, ReceivedAt: lateAt, Method: "POST",
		Body: payload(testEvent{ID: "late", From: "2", Text: "late"})}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	entries, err := e.db.InboundSince(ctx, e.ch.ID, time.Time{}, "", 100000)
	if err != nil {
		t.Fatal(err)
	}
	stop.Store(true)
	<-streamDone
	var lateState string
	laterDone := 0
	for _, en := range entries {
		if en.ID == early {
			lateState = en.State
		} else if en.ReceivedAt.After(lateAt) && en.State == store.InboundDone {
			laterDone++
		}
	}
	if lateState != store.InboundDone {
		t.Errorf("the entry committed 700 ms ago is %q while %d entries received after it were applied: skipped by PendingInboundAfter", lateState, laterDone)
	}
}
