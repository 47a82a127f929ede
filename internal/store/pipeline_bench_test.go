package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
)

// BenchmarkApplyInbound measures ApplyInbound of one new inbound message
// (contact lookup, conversation, message, change rows) on SQLite.
func BenchmarkApplyInbound(b *testing.B) {
	db, err := Open(context.Background(), "sqlite:"+b.TempDir()+"/b.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	f := plSetup(b, db)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := InboundEntry{ID: newID(), WorkspaceID: f.ws, ChannelID: f.ch.ID, ReceivedAt: f.t0}
		if _, err := db.ApplyInbound(ctx, e, f.ch, []channel.Event{plMsgEv(fmt.Sprint("b", i), fmt.Sprint(i%50), "hello")}); err != nil {
			b.Fatal(err)
		}
	}
}
