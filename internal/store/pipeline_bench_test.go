package store

import (
	"context"
	"fmt"
	"os"
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
// transaction sizes), on SQLite and (with PARLEY_TEST_POSTGRES_URL) on
// PostgreSQL; ns/op and stmts/op are per message.
func BenchmarkApplyInboundBatch(b *testing.B) {
	dbs := map[string]func(b *testing.B) *DB{"sqlite": func(b *testing.B) *DB {
		db, err := Open(context.Background(), "sqlite:"+b.TempDir()+"/b.db", Options{})
		if err != nil {
			b.Fatal(err)
		}
		return db
	}}
	if url := os.Getenv("PARLEY_TEST_POSTGRES_URL"); url != "" {
		dbs["postgres"] = func(b *testing.B) *DB { return PLOpenPostgresSchema(b, url) }
	}
	for _, name := range []string{"sqlite", "postgres"} {
		open, ok := dbs[name]
		if !ok {
			continue
		}
		for _, per := range []int{8, 64} {
			b.Run(fmt.Sprintf("%s/%d", name, per), func(b *testing.B) {
				db := open(b)
				defer db.Close()
				f := plSetup(b, db)
				ctx := context.Background()
				n0 := statements.Load()
				b.ResetTimer()
				for i := 0; i < b.N; i += per {
					items := make([]InboundBatchItem, 0, per)
					for j := i; j < min(i+per, b.N); j++ {
						items = append(items, InboundBatchItem{
							Entry:  InboundEntry{ID: newID(), WorkspaceID: f.ws, ChannelID: f.ch.ID, ReceivedAt: f.t0, State: InboundPending},
							Events: []channel.Event{plMsgEv(fmt.Sprint("b", j), fmt.Sprint(j%500), "hello")},
						})
					}
					if _, err := db.ApplyInboundBatch(ctx, f.ch, items); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(statements.Load()-n0)/float64(b.N), "stmts/op")
			})
		}
	}
}
