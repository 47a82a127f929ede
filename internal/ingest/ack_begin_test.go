package ingest

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/store"
)

// A group commit whose transaction cannot begin (here: the SQLite file is
// locked by another process for longer than busy_timeout; on PostgreSQL any
// failed BeginTx) leaves the waiting webhooks queued: the committer must try
// them again, and later webhooks must be acknowledged once the lock is gone.
func TestAcksSurviveAFailedBegin(t *testing.T) {
	e := newEnvWorkers(t, true, -1) // this node only acknowledges
	path := strings.TrimPrefix(e.dbURL, "sqlite:")
	other, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	lock, err := other.Begin() // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan int, 1)
	go func() {
		st, _ := e.post(t, payload(testEvent{ID: "a1", From: "1", Text: "x"}), true)
		first <- st
	}()
	time.Sleep(5500 * time.Millisecond) // the committer's BEGIN gives up (busy_timeout 5 s)
	lock.Rollback()

	// The lock is gone: new webhooks must be acknowledged promptly.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- e.ing.Append(ctx, store.InboundEntry{WorkspaceID: e.ws, ChannelID: e.ch.ID, ReceivedAt: time.Now(), Method: "POST", Body: []byte(`{"events":[]}`)})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a webhook after the lock was released: %v (the queue is wedged)", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("Append did not return")
	}
	select {
	case st := <-first:
		t.Logf("first webhook answered %d", st)
	case <-time.After(time.Second):
		t.Error("the first webhook is still waiting")
	}
}
