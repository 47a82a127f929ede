package realtime

import (
	"os"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

// Two hubs on two NATS connections behave as two nodes of a cluster.
func TestNATSTwoNodes(t *testing.T) {
	url := os.Getenv("PARLEY_TEST_NATS_URL")
	if url == "" {
		t.Skip("PARLEY_TEST_NATS_URL not set (e.g. nats://127.0.0.1:4222)")
	}
	bus1, err := DialNATS(url, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer bus1.Close()
	bus2, err := DialNATS(url, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer bus2.Close()
	if err := bus1.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	o := defaultOpts()
	o.NodeHeartbeat = 200 * time.Millisecond
	o.PollInterval = 500 * time.Millisecond
	log := newMemLog()
	e1 := newEnvLog(t, o, bus1, log)
	e2 := newEnvLog(t, o, bus2, log)
	// commits happen on node 2 and reach node 1 over NATS
	log.SetOnCommit(func(cs []inbox.Change) { e2.hub.Load().PublishChanges(cs) })
	twoNodes(t, e1, e2)
}
