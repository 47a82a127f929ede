package realtime

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/realtime/client"
)

func TestWSFrameHeader(t *testing.T) {
	for _, tc := range []struct {
		n      int
		header []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, append([]byte{0x81, 127}, binary.BigEndian.AppendUint64(nil, 65536)...)},
	} {
		p := bytes.Repeat([]byte("x"), tc.n)
		f := textFrame(p)
		if !bytes.Equal(f[:len(tc.header)], tc.header) || !bytes.Equal(f[len(tc.header):], p) {
			t.Errorf("frame of %d bytes: header % x", tc.n, f[:min(len(f), 10)])
		}
	}
	if f := wsFrame(opPing, nil); !bytes.Equal(f, []byte{0x89, 0}) {
		t.Errorf("ping frame % x", f)
	}
}

// Frames the hub encodes itself, of every length class, reach a standard
// client intact.
func TestLargeAndSmallFramesIntact(t *testing.T) {
	e := newEnv(t, defaultOpts(), nil)
	c := e.rawDial("u1", "admin", "0")
	if f, err := readFrame(t, c, 5*time.Second); err != nil || f.Type != FrameHello {
		t.Fatalf("hello: %+v %v", f, err)
	}
	sizes := []int{0, 10, 100, 120, 200, 70000, 300000}
	for i, n := range sizes {
		e.log.Commit(testWS, change{entity: inbox.EntityMessage, id: fmt.Sprint(i), data: map[string]any{"text": strings.Repeat("y", n)}})
	}
	for i, n := range sizes {
		f, err := readFrame(t, c, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(f.Data, &m); err != nil || f.Seq != int64(i+1) || len(m.Text) != n {
			t.Fatalf("frame %d: seq %d, %d bytes of text (want %d): %v", i, f.Seq, len(m.Text), n, err)
		}
	}
}

// Clients that stopped reading (their sockets full) neither delay the others
// nor hold a writer: with more stuck clients than pool writers, the fast
// client gets every change while they are stuck, and they are closed with
// 4000 once their queues fill.
func TestStuckClientDoesNotDelayOthers(t *testing.T) {
	o := defaultOpts()
	o.QueueSize = 64
	o.WriteTimeout = time.Hour // a writer waiting for the stuck peer would wait "forever"
	o.HeartbeatInterval = time.Hour
	e := newEnv(t, o, nil)
	var stuck []*websocket.Conn
	for i := 0; i <= e.hub.Load().pool.max; i++ {
		c := e.rawDial(fmt.Sprint("slow", i), "admin", "0") // never read again after the hello
		if _, err := readFrame(t, c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		stuck = append(stuck, c)
	}
	fast := e.dial("fast", "admin", client.Options{Since: "0"})
	nextOf(t, fast, FrameHello, 5*time.Second)

	big := strings.Repeat("z", 16<<10)
	const total = 2000 // ~32 MB: far more than the socket buffers hold
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			e.log.Commit(testWS, change{entity: inbox.EntityMessage, id: fmt.Sprint(i), data: map[string]any{"body": big}})
		}
	}()
	checkContiguous(t, "fast client", collectSeqs(t, fast, total, 60*time.Second), 0, total)
	<-done
	// (the fast client may have been one too, briefly: it resumes)
	waitFor(t, 10*time.Second, "the stuck clients to be closed as slow consumers", func() bool {
		return e.hub.Load().Stats().SlowConsumers >= int64(len(stuck))
	})
	// a stuck client, reading again, finds the close code after what was buffered
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, c := range stuck {
		for {
			_, _, err := c.Read(ctx)
			if err != nil {
				if code := websocket.CloseStatus(err); code != CloseSlowConsumer {
					t.Fatalf("stuck client %d ended with %v (code %d), want 4000", i, err, code)
				}
				break
			}
		}
	}
}

// ServeWS returns once the connection is live (no goroutine of the HTTP
// server is held per connection); the hub keeps serving it.
func TestServeWSReturnsOnceLive(t *testing.T) {
	e := newEnv(t, defaultOpts(), nil)
	var returned atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		e.hub.Load().ServeWS(w, r, Principal{WorkspaceID: testWS, UserID: q.Get("user"), Role: "agent"}, ServeOptions{Since: q.Get("since")})
		returned.Add(1)
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	srv := ts.URL
	e.log.CommitN(testWS, 3)
	c, err := client.Dial(context.Background(), "ws"+strings.TrimPrefix(srv, "http")+"/ws?user=u1", client.Options{Since: "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkContiguous(t, "replay", collectSeqs(t, c, 3, 5*time.Second), 1, 3)
	waitFor(t, 5*time.Second, "ServeWS to return", func() bool { return returned.Load() == 1 })
	e.log.CommitN(testWS, 2)
	checkContiguous(t, "live", collectSeqs(t, c, 5, 5*time.Second), 3, 5)
	if n := e.hub.Load().Stats().Connections; n != 1 {
		t.Fatalf("connections %d", n)
	}
}

// A fan-out queues the same encoded frames on every connection: the
// allocations of delivering a commit do not grow with the connections.
func TestFanoutAllocationsIndependentOfConnections(t *testing.T) {
	allocs := func(n int) float64 {
		h, err := NewHub(HubOptions{Bus: NewMemoryBus(nil, 0), Changes: newMemLog(), PollInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = h.Shutdown(context.Background()) }()
		ws := &wsState{h: h, id: testWS, conns: map[*conn]struct{}{}, pending: map[int64]*outChange{}, known: true}
		var conns []*conn
		for i := range n {
			role := "agent"
			if i%3 == 0 {
				role = "admin"
			}
			c := &conn{h: h, p: Principal{WorkspaceID: testWS, UserID: fmt.Sprint("u", i%7), Role: role}, admin: isAdminRole(role), live: true}
			c.q.max, c.q.owned = 1<<20, true // owned: nothing is written, frames stay queued
			ws.conns[c] = struct{}{}
			conns = append(conns, c)
		}
		seq := int64(0)
		batch := func(entities ...string) []*outChange {
			var out []*outChange
			for _, en := range entities {
				seq++
				out = append(out, newOutChange(inbox.Change{Seq: seq, Entity: en, Op: inbox.OpUpsert, ID: "x", Data: []byte(`{"user_id":"u1"}`)}))
			}
			return out
		}
		return testing.AllocsPerRun(20, func() {
			outs := batch(inbox.EntityConversation, inbox.EntityMessage, inbox.EntityContact)
			if seq%2 == 0 {
				outs = append(outs, batch(inbox.EntityReadState, "api_token")...)
			}
			ws.mu.Lock()
			for _, oc := range outs {
				ws.deliverLocked(oc)
			}
			ws.fanoutLocked()
			ws.mu.Unlock()
			for _, c := range conns {
				c.q.items = nil
			}
		})
	}
	small, large := allocs(10), allocs(2000)
	if large > small+30 {
		t.Fatalf("allocations per fan-out: %.0f for 10 connections, %.0f for 2000", small, large)
	}
}

// netConn returns the bytes the HTTP server read past the handshake first.
func TestNetConnPreRead(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	nc := &netConn{Conn: a, pre: []byte("early")}
	go func() { _, _ = b.Write([]byte("later")) }()
	buf := make([]byte, 3)
	var got []byte
	for len(got) < 10 {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "earlylater" {
		t.Fatalf("read %q", got)
	}
}

// writeFrames never waits: a batch the socket does not take whole (or that
// meets a busy socket) is finished by writeRest, and the bytes arrive whole
// and in order.
func TestNetConnWriteFrames(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	raw := <-accepted
	defer raw.Close()
	nc := &netConn{Conn: raw, raw: newRawWriter(raw)}

	var want bytes.Buffer
	frame := func(i int) []byte { return textFrame([]byte(fmt.Sprintf("%06d%s", i, strings.Repeat("p", 4000)))) }
	// the peer does not read: write until the socket is full
	i, pending := 0, false
	for ; !pending && i < 100000; i++ {
		fs := [][]byte{frame(2 * i), frame(2*i + 1)}
		want.Write(fs[0])
		want.Write(fs[1])
		if pending, err = nc.writeFrames(fs); err != nil {
			t.Fatal(err)
		}
	}
	if !pending {
		t.Fatal("the socket never filled")
	}
	got := make(chan []byte)
	go func() {
		b := make([]byte, want.Len())
		_, _ = io.ReadFull(peer, b)
		got <- b
	}()
	if err := nc.writeRest(time.Minute); err != nil {
		t.Fatal(err)
	}
	// a busy socket (the library writing a control frame): the batch waits for it
	nc.mu.Lock()
	last := [][]byte{frame(-1)}
	if pending, err := nc.writeFrames(last); !pending || err != nil {
		t.Fatalf("writeFrames on a busy socket: %v %v", pending, err)
	}
	done := make(chan error)
	go func() { done <- nc.writeRest(time.Minute) }()
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("received %d bytes differing from the %d written", len(b), want.Len())
	}
	nc.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b := make([]byte, len(last[0]))
	if _, err := io.ReadFull(peer, b); err != nil || !bytes.Equal(b, last[0]) {
		t.Fatalf("last frame: %v", err)
	}
}

// A peer whose socket stays full for WriteTimeout is dropped (its queue
// never filled: it is not a slow consumer but a stalled one).
func TestStalledPeerDroppedAfterWriteTimeout(t *testing.T) {
	o := defaultOpts()
	o.QueueSize = 1 << 20
	o.WriteTimeout = 200 * time.Millisecond
	o.HeartbeatInterval = time.Hour
	e := newEnv(t, o, nil)
	stalled := e.rawDial("stalled", "admin", "0") // never reads after the hello
	if _, err := readFrame(t, stalled, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the connection", func() bool { return e.hub.Load().Stats().Connections == 1 })
	big := strings.Repeat("w", 32<<10)
	for i := 0; e.hub.Load().Stats().Connections == 1; i++ {
		if i == 2000 { // 64 MB: far more than socket buffers
			t.Fatal("the stalled peer was never dropped")
		}
		e.log.Commit(testWS, change{entity: inbox.EntityMessage, id: fmt.Sprint(i), data: map[string]any{"body": big}})
		time.Sleep(time.Millisecond)
	}
	if s := e.hub.Load().Stats(); s.SlowConsumers != 0 || s.QueuedFrames != 0 {
		t.Fatalf("stats after the drop: %+v", s)
	}
}

type recTurner struct {
	i    int
	seen *[]int
	mu   *sync.Mutex
	gate chan struct{}
}

func (r recTurner) writeTurn() {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	*r.seen = append(*r.seen, r.i)
	r.mu.Unlock()
}

// The pool runs every scheduled turn once, in order with one worker, and
// keeps its queue bounded while it never drains.
func TestWriterPoolOrderAndCompaction(t *testing.T) {
	p := &writerPool{max: 1}
	var mu sync.Mutex
	var seen []int
	gate := make(chan struct{})
	p.add(recTurner{i: 0, seen: &seen, mu: &mu, gate: gate}) // holds the only worker
	const n = 20000
	for i := 1; i < n; i++ {
		p.add(recTurner{i: i, seen: &seen, mu: &mu})
		if i == n/2 {
			close(gate)
		}
	}
	waitFor(t, 10*time.Second, "every turn", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	for i, v := range seen {
		if v != i {
			t.Fatalf("turn %d ran at position %d", v, i)
		}
	}
	waitFor(t, 5*time.Second, "the worker to stop", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.running == 0 && len(p.q) == 0 && p.waiting.Load() == 0
	})
}
