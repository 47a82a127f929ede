package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/realtime/client"
)

// Replay after since, then live, with concurrent writers whose publishes
// interleave out of order: every client gets exactly the seqs after its
// cursor, in order.
func TestReplayThenLiveNoGapNoDup(t *testing.T) {
	e := newEnv(t, defaultOpts(), nil)
	e.log.CommitN(testWS, 120)

	const writers, perWriter = 4, 150
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < perWriter; i++ {
				cs := []change{{entity: inbox.EntityMessage, id: fmt.Sprintf("m%d-%d", w, i), data: map[string]any{"w": w, "i": i}}}
				if i%5 == 0 { // multi-change commits too
					cs = append(cs, change{entity: inbox.EntityConversation, id: "c1", data: map[string]any{"id": "c1"}})
				}
				e.log.Commit(testWS, cs...)
			}
		}()
	}
	type sub struct {
		name  string
		since int64
		c     *client.Client
	}
	var subs []sub
	for _, since := range []int64{0, 60, 120} {
		c := e.dial("admin1", "admin", client.Options{Since: strconv.FormatInt(since, 10)})
		subs = append(subs, sub{fmt.Sprintf("since=%d", since), since, c})
	}
	close(start)
	// more clients join while the writers run
	time.Sleep(5 * time.Millisecond)
	for _, since := range []int64{30, 0} {
		c := e.dial("admin2", "owner", client.Options{Since: strconv.FormatInt(since, 10)})
		subs = append(subs, sub{fmt.Sprintf("late since=%d", since), since, c})
	}
	wg.Wait()
	head := e.log.Head(testWS)
	if head < 120+writers*perWriter {
		t.Fatalf("head %d", head)
	}
	for _, s := range subs {
		seqs := collectSeqs(t, s.c, head, 20*time.Second)
		checkContiguous(t, s.name, seqs, s.since, head)
		if s.c.Cursor() != strconv.FormatInt(head, 10) {
			t.Fatalf("%s: cursor %s", s.name, s.c.Cursor())
		}
	}
}

// Frames are exactly as API.md says: a change frame carries seq, entity,
// op, id, data; deletes carry data null.
func TestChangeFrameShape(t *testing.T) {
	e := newEnv(t, defaultOpts(), nil)
	c := e.rawDial("u1", "admin", "0")
	f, err := readFrame(t, c, 5*time.Second)
	if err != nil || f.Type != FrameHello || f.UserID != "u1" || f.Cursor != "0" {
		t.Fatalf("hello: %+v %v", f, err)
	}
	e.log.Commit(testWS, change{entity: inbox.EntityLabel, id: "l1", data: map[string]any{"id": "l1", "name": "VIP"}},
		change{entity: inbox.EntityLabel, op: inbox.OpDelete, id: "l0"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, want := range []string{
		`{"data":{"id":"l1","name":"VIP"},"entity":"label","id":"l1","op":"upsert","seq":1,"type":"change"}`,
		`{"data":null,"entity":"label","id":"l0","op":"delete","seq":2,"type":"change"}`,
	} {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["at"].(string); !ok {
			t.Fatalf("frame %d lacks at: %s", i, b)
		}
		delete(m, "at")
		got, _ := json.Marshal(m)
		if string(got) != want {
			t.Fatalf("frame %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// A lost bus message in the middle is fetched from the change log before
// the following change is delivered; a lost trailing message is caught by
// the safety poll.
func TestGapRepair(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drop  map[int64]bool
		total int64
		poll  bool
	}{
		{"middle", map[int64]bool{3: true, 7: true, 8: true}, 12, false},
		{"trailing", map[int64]bool{12: true}, 12, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mb := NewMemoryBus(testLogger(t), 0)
			defer mb.Close()
			db := &dropBus{Bus: mb}
			db.drop = func(subject string, data []byte) bool {
				var m busChanges
				if json.Unmarshal(data, &m) != nil || len(m.Changes) == 0 {
					return false
				}
				return tc.drop[m.Changes[0].Seq]
			}
			o := defaultOpts()
			if tc.poll {
				o.PollInterval = 50 * time.Millisecond
			}
			e := newEnv(t, o, db)
			c := e.dial("u1", "admin", client.Options{Since: "0"})
			// seq 1 arrives once the replay read is done: later commits are live
			e.log.CommitN(testWS, 1)
			collectSeqs(t, c, 1, 5*time.Second)
			e.log.CommitN(testWS, int(tc.total)-1)
			seqs := collectSeqs(t, c, tc.total, 5*time.Second)
			checkContiguous(t, tc.name, seqs, 1, tc.total)
			if db.dropped.Load() != int64(len(tc.drop)) {
				t.Fatalf("dropped %d", db.dropped.Load())
			}
			// repair reads forward, so it may also fetch changes whose
			// publish had not arrived yet (those are then dropped as duplicates)
			if got := e.hub.Load().Stats().Repaired; got < int64(len(tc.drop)) {
				t.Fatalf("repaired %d, want at least %d", got, len(tc.drop))
			}
		})
	}
}

// Out-of-order arrival (another node publishing late) never produces a
// duplicate: the late message is dropped as already delivered.
func TestOutOfOrderArrivalNoDuplicate(t *testing.T) {
	mb := NewMemoryBus(testLogger(t), 0)
	defer mb.Close()
	var held atomic.Pointer[[]byte]
	db := &dropBus{Bus: mb}
	db.drop = func(subject string, data []byte) bool {
		var m busChanges
		if json.Unmarshal(data, &m) == nil && len(m.Changes) > 0 && m.Changes[0].Seq == 2 && held.Load() == nil {
			cp := append([]byte(nil), data...)
			held.Store(&cp)
			return true
		}
		return false
	}
	e := newEnv(t, defaultOpts(), db)
	c := e.dial("u1", "admin", client.Options{Since: "0"})
	nextOf(t, c, FrameHello, 5*time.Second)
	e.log.CommitN(testWS, 3)
	seqs := collectSeqs(t, c, 3, 5*time.Second)
	checkContiguous(t, "before late publish", seqs, 0, 3)
	// the late publish of seq 2 arrives now
	if err := mb.Publish(context.Background(), ChangesSubject(testWS), *held.Load()); err != nil {
		t.Fatal(err)
	}
	e.log.CommitN(testWS, 1)
	seqs = collectSeqs(t, c, 4, 5*time.Second)
	checkContiguous(t, "after late publish", seqs, 3, 4)
}

// A cursor older than the retained log (or unknown) gets {"type":"resync"}
// and close code 4002; the resuming client takes a snapshot and continues.
func TestResyncOnTooOldCursor(t *testing.T) {
	e := newEnv(t, defaultOpts(), nil)
	e.log.CommitN(testWS, 10)
	e.log.Prune(testWS, 5)

	for _, since := range []string{"2", "999", "x"} {
		raw := e.rawDial("u1", "admin", since)
		f, err := readFrame(t, raw, 5*time.Second)
		if err != nil || f.Type != FrameHello {
			t.Fatalf("since=%s: first frame %+v %v", since, f, err)
		}
		f, err = readFrame(t, raw, 5*time.Second)
		if err != nil || f.Type != FrameResync {
			t.Fatalf("since=%s: want resync, got %+v %v", since, f, err)
		}
		_, err = readFrame(t, raw, 5*time.Second)
		if code := websocket.CloseStatus(err); code != CloseResync {
			t.Fatalf("since=%s: close %v (%v)", since, code, err)
		}
	}

	// the still-retained boundary works
	raw := e.rawDial("u1", "admin", "5")
	readFrame(t, raw, 5*time.Second)
	if f, err := readFrame(t, raw, 5*time.Second); err != nil || f.Type != FrameChange || f.Seq != 6 {
		t.Fatalf("since=5: %+v %v", f, err)
	}

	st := client.NewState()
	var snaps atomic.Int32
	c := e.dial("u1", "admin", client.Options{Since: "1", State: st, Snapshot: func(ctx context.Context) (client.Snapshot, error) {
		snaps.Add(1)
		return client.Snapshot{Cursor: "10", Entities: map[string]map[string]json.RawMessage{
			inbox.EntityConversation: {"c1": json.RawMessage(`{"id":"c1","v":"snap"}`)},
		}}, nil
	}})
	f := nextOf(t, c, FrameResync, 5*time.Second)
	if f.Cursor != "10" || snaps.Load() != 1 {
		t.Fatalf("resync frame %+v snaps %d", f, snaps.Load())
	}
	e.log.Commit(testWS, change{entity: inbox.EntityConversation, id: "c2", data: map[string]any{"id": "c2"}})
	seqs := collectSeqs(t, c, 11, 5*time.Second)
	checkContiguous(t, "after resync", seqs, 10, 11)
	if st.Len(inbox.EntityConversation) != 2 || st.Cursor() != "11" {
		t.Fatalf("state: %d conversations, cursor %s", st.Len(inbox.EntityConversation), st.Cursor())
	}
}

// Agents see only their own read_state and no admin-only entity; admins see
// admin entities; everyone sees the user-neutral data unchanged.
func TestRoleFiltering(t *testing.T) {
	e := newEnv(t, defaultOpts(), nil)
	commitAll := func() {
		e.log.Commit(testWS,
			change{entity: inbox.EntityConversation, id: "c1", data: map[string]any{"id": "c1", "unread_count": 0}},
			change{entity: inbox.EntityReadState, id: "c1", data: map[string]any{"conversation_id": "c1", "user_id": "agentA", "unread_count": 0}},
			change{entity: inbox.EntityReadState, id: "c1", data: map[string]any{"conversation_id": "c1", "user_id": "adminB", "unread_count": 3}},
			change{entity: "provider_account", id: "pa1", data: map[string]any{"id": "pa1"}},
			change{entity: "api_token", id: "t1", data: map[string]any{"id": "t1"}},
			change{entity: inbox.EntityMessage, id: "m1", data: map[string]any{"id": "m1"}},
		)
	}
	commitAll() // seqs 1-6, replayed
	agent := e.dial("agentA", "agent", client.Options{Since: "0"})
	admin := e.dial("adminB", "admin", client.Options{Since: "0"})
	nextOf(t, agent, FrameHello, 5*time.Second)
	nextOf(t, admin, FrameHello, 5*time.Second)
	commitAll() // seqs 7-12, live

	type got struct {
		seq    int64
		entity string
		user   string
	}
	read := func(c *client.Client, n int) []got {
		var out []got
		for len(out) < n {
			f := nextOf(t, c, FrameChange, 5*time.Second)
			var d struct {
				UserID string `json:"user_id"`
			}
			_ = json.Unmarshal(f.Data, &d)
			out = append(out, got{f.Seq, f.Entity, d.UserID})
		}
		return out
	}
	wantAgent := []got{{1, "conversation", ""}, {2, "read_state", "agentA"}, {6, "message", ""}, {7, "conversation", ""}, {8, "read_state", "agentA"}, {12, "message", ""}}
	if g := read(agent, len(wantAgent)); fmt.Sprint(g) != fmt.Sprint(wantAgent) {
		t.Fatalf("agent got %v\nwant %v", g, wantAgent)
	}
	wantAdmin := []got{{1, "conversation", ""}, {3, "read_state", "adminB"}, {4, "provider_account", ""}, {5, "api_token", ""}, {6, "message", ""},
		{7, "conversation", ""}, {9, "read_state", "adminB"}, {10, "provider_account", ""}, {11, "api_token", ""}, {12, "message", ""}}
	if g := read(admin, len(wantAdmin)); fmt.Sprint(g) != fmt.Sprint(wantAdmin) {
		t.Fatalf("admin got %v\nwant %v", g, wantAdmin)
	}
	// the agent's cursor resumes past filtered changes without gaps
	if agent.Cursor() != "12" {
		t.Fatalf("agent cursor %s", agent.Cursor())
	}
}

// A client whose queue fills is closed with 4000 and the resuming client
// gets every change exactly once.
func TestSlowConsumerResumes(t *testing.T) {
	o := defaultOpts()
	o.QueueSize = 4
	e := newEnv(t, o, nil)
	var codes sync.Map
	var n4000 atomic.Int32
	c := e.dial("u1", "admin", client.Options{Since: "0", Buffer: 1, OnDisconnect: func(code websocket.StatusCode, reason string) {
		codes.Store(code, reason)
		if code == CloseSlowConsumer {
			n4000.Add(1)
		}
	}})
	nextOf(t, c, FrameHello, 5*time.Second)
	big := make([]byte, 8<<10)
	for i := range big {
		big[i] = 'x'
	}
	const total = 1500 // ~12 MB: more than the socket buffers hold
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < total; i++ {
			e.log.Commit(testWS, change{entity: inbox.EntityMessage, id: fmt.Sprint(i), data: map[string]any{"body": string(big)}})
		}
	}()
	wg.Wait()
	// the client was not reading; the server gives up on it ...
	waitFor(t, 10*time.Second, "slow consumer disconnect", func() bool { return e.hub.Load().Stats().SlowConsumers > 0 })
	// ... and the client, reading again, gets 4000 and resumes from its cursor
	seqs := collectSeqs(t, c, total, 30*time.Second)
	checkContiguous(t, "slow consumer", seqs, 0, total)
	if n4000.Load() == 0 {
		t.Fatal("client never saw close code 4000")
	}
	if r, ok := codes.Load(CloseSlowConsumer); !ok || r != ReasonSlowConsumer {
		t.Fatalf("close reason %v", r)
	}
	if c.Reconnects() < 1 {
		t.Fatal("client did not reconnect")
	}
}

// A peer that stops answering pings is dropped.
func TestHeartbeatDropsDeadPeer(t *testing.T) {
	o := defaultOpts()
	o.HeartbeatInterval = 100 * time.Millisecond
	e := newEnv(t, o, nil)
	// this connection never reads, so it never answers a ping
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dead, _, err := websocket.Dial(ctx, e.wsURL(testWS, "ghost", "agent", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.CloseNow()
	// a live client keeps answering
	live := e.dial("u1", "admin", client.Options{Since: "0"})
	nextOf(t, live, FrameHello, 5*time.Second)
	waitFor(t, 5*time.Second, "two connections", func() bool { return e.hub.Load().Stats().Connections == 2 })
	waitFor(t, 5*time.Second, "dead peer dropped", func() bool { return e.hub.Load().Stats().Connections == 1 })
	for { // the ghost goes offline (it may first be seen online)
		f := nextOf(t, live, FramePresence, 5*time.Second)
		if f.UserID == "ghost" && f.Status == StatusOffline {
			break
		}
	}
	// the live one is still served after several heartbeats
	time.Sleep(400 * time.Millisecond)
	e.log.CommitN(testWS, 1)
	checkContiguous(t, "live", collectSeqs(t, live, 1, 5*time.Second), 0, 1)
}

// Shutdown closes sockets with 4001; the client resumes on the next hub
// from its cursor without loss.
func TestShutdownAndResume(t *testing.T) {
	e := newEnv(t, defaultOpts(), nil)
	var n4001 atomic.Int32
	c := e.dial("u1", "admin", client.Options{Since: "0", OnDisconnect: func(code websocket.StatusCode, reason string) {
		if code == CloseServerRestart && reason == ReasonServerRestart {
			n4001.Add(1)
		}
	}})
	nextOf(t, c, FrameHello, 5*time.Second)
	e.log.CommitN(testWS, 5)
	checkContiguous(t, "before", collectSeqs(t, c, 5, 5*time.Second), 0, 5)

	old := e.hub.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := old.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "client sees 4001", func() bool { return n4001.Load() == 1 })
	// changes committed while no hub runs are replayed on reconnect
	e.log.SetOnCommit(nil)
	e.log.CommitN(testWS, 3)
	e.startHub(defaultOpts())
	e.log.SetOnCommit(func(cs []inbox.Change) { e.hub.Load().PublishChanges(cs) })
	nextOf(t, c, FrameHello, 5*time.Second)
	e.log.CommitN(testWS, 2)
	checkContiguous(t, "after", collectSeqs(t, c, 10, 5*time.Second), 5, 10)

	// a hub that is shut down refuses new connections
	rec := httptest.NewRecorder()
	old.ServeWS(rec, httptest.NewRequest("GET", "/ws", nil), Principal{WorkspaceID: testWS, UserID: "u"}, ServeOptions{})
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("old hub answered %d", rec.Code)
	}
}

// Out-of-order publishes that close the gap within GapWait cost no change
// log read.
func TestGapClosedByLatePublishWithoutRead(t *testing.T) {
	mb := NewMemoryBus(testLogger(t), 0)
	defer mb.Close()
	var held atomic.Pointer[[]byte]
	db := &dropBus{Bus: mb}
	db.drop = func(subject string, data []byte) bool {
		var m busChanges
		if json.Unmarshal(data, &m) == nil && len(m.Changes) > 0 && m.Changes[0].Seq == 2 && held.Load() == nil {
			cp := append([]byte(nil), data...)
			held.Store(&cp)
			return true
		}
		return false
	}
	o := defaultOpts()
	o.GapWait = 3 * time.Second
	e := newEnv(t, o, db)
	c := e.dial("u1", "admin", client.Options{Since: "0"})
	e.log.CommitN(testWS, 1)
	collectSeqs(t, c, 1, 5*time.Second) // live from here
	e.log.CommitN(testWS, 2)            // seq 2 held, seq 3 opens a gap
	if err := mb.Publish(context.Background(), ChangesSubject(testWS), *held.Load()); err != nil {
		t.Fatal(err)
	}
	checkContiguous(t, "late publish", collectSeqs(t, c, 3, 5*time.Second), 1, 3)
	if r := e.hub.Load().Stats().Repaired; r != 0 {
		t.Fatalf("repaired %d: the late publish should have closed the gap", r)
	}
}
