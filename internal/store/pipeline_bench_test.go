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

// BenchmarkApplyInboundBatch measures ApplyInboundBatch per message with
// batches of 8 and 64 new inbound messages over 500 chats (the worker's
// transaction sizes); ns/op is per message.
func BenchmarkApplyInboundBatch(b *testing.B) {
	for _, per := range []int{8, 64} {
		b.Run(fmt.Sprint(per), func(b *testing.B) {
			db, err := Open(context.Background(), "sqlite:"+b.TempDir()+"/b.db", Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			f := plSetup(b, db)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i += per {
				items := make([]InboundBatchItem, 0, per)
				for j := i; j < min(i+per, b.N); j++ {
					items = append(items, InboundBatchItem{
						Entry:  InboundEntry{ID: newID(), WorkspaceID: f.ws, ChannelID: f.ch.ID, ReceivedAt: f.t0},
						Events: []channel.Event{plMsgEv(fmt.Sprint("b", j), fmt.Sprint(j%500), "hello")},
					})
				}
				if _, err := db.ApplyInboundBatch(ctx, f.ch, items); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
