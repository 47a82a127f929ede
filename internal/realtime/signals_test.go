package realtime

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/realtime/client"
)

type typingMsg struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	State          string `json:"state,omitempty"`
	Status         string `json:"status,omitempty"`
}

func send(t *testing.T, c *client.Client, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Send(ctx, v); err != nil {
		t.Fatal(err)
	}
}

// Typing reaches the other users (not the typist's own tabs), turns off on
// "off", and expires by itself when not refreshed.
func TestTyping(t *testing.T) {
	o := defaultOpts()
	o.TypingTimeout = time.Second
	e := newEnv(t, o, nil)
	a := e.dial("alice", "agent", client.Options{Since: "0"})
	a2 := e.dial("alice", "agent", client.Options{Since: "0"})
	b := e.dial("bob", "agent", client.Options{Since: "0"})
	for _, c := range []*client.Client{a, a2, b} {
		nextOf(t, c, FrameHello, 5*time.Second)
	}

	send(t, a, typingMsg{Type: "typing", ConversationID: "conv1", State: "on"})
	f := nextOf(t, b, FrameTyping, 5*time.Second)
	if f.UserID != "alice" || f.ConversationID != "conv1" || f.State != "on" {
		t.Fatalf("typing on: %+v", f)
	}
	send(t, a, typingMsg{Type: "typing", ConversationID: "conv1", State: "off"})
	if f := nextOf(t, b, FrameTyping, 5*time.Second); f.State != "off" {
		t.Fatalf("typing off: %+v", f)
	}

	// not refreshed: expires after the timeout
	start := time.Now()
	send(t, a, typingMsg{Type: "typing", ConversationID: "conv2", State: "on"})
	if f := nextOf(t, b, FrameTyping, 5*time.Second); f.State != "on" {
		t.Fatalf("typing on: %+v", f)
	}
	f = nextOf(t, b, FrameTyping, 5*time.Second)
	if f.State != "off" || f.ConversationID != "conv2" || time.Since(start) < o.TypingTimeout {
		t.Fatalf("typing expiry: %+v after %v", f, time.Since(start))
	}
	// refreshed "on" keeps it on past the timeout
	send(t, a, typingMsg{Type: "typing", ConversationID: "conv3", State: "on"})
	nextOf(t, b, FrameTyping, 5*time.Second)
	for i := 0; i < 6; i++ {
		time.Sleep(o.TypingTimeout / 5)
		send(t, a, typingMsg{Type: "typing", ConversationID: "conv3", State: "on"})
	}
	noFrameOf(t, b, FrameTyping, 50*time.Millisecond, nil)
	// the typist's other tab saw none of it
	noFrameOf(t, a2, FrameTyping, 50*time.Millisecond, nil)
	// closing the typing connection turns it off at once
	_ = a.Close()
	if f := nextOf(t, b, FrameTyping, o.TypingTimeout/2); f.State != "off" || f.ConversationID != "conv3" {
		t.Fatalf("typing off on disconnect: %+v", f)
	}
}

// Presence: several tabs count once; offline only after the last tab closes
// and the grace period passes; a reconnect within the grace is invisible;
// the chosen status reaches everyone.
func TestPresenceTabsAndGrace(t *testing.T) {
	o := defaultOpts()
	o.PresenceGrace = time.Second
	e := newEnv(t, o, nil)
	h := e.hub.Load()
	obs := e.dial("bob", "agent", client.Options{Since: "0"})
	nextOf(t, obs, FrameHello, 5*time.Second)

	tab1 := e.dial("alice", "agent", client.Options{Since: "0"})
	hello := nextOf(t, tab1, FrameHello, 5*time.Second)
	if hello.Presence["bob"] != StatusOnline || hello.Presence["alice"] != StatusOnline {
		t.Fatalf("hello presence %v", hello.Presence)
	}
	if f := nextOf(t, obs, FramePresence, 5*time.Second); f.UserID != "alice" || f.Status != StatusOnline {
		t.Fatalf("presence %+v", f)
	}
	tab2 := e.dial("alice", "agent", client.Options{Since: "0"})
	nextOf(t, tab2, FrameHello, 5*time.Second)
	noFrameOf(t, obs, FramePresence, 100*time.Millisecond, nil) // second tab: no change

	send(t, tab2, typingMsg{Type: "presence", Status: StatusAway})
	if f := nextOf(t, obs, FramePresence, 5*time.Second); f.UserID != "alice" || f.Status != StatusAway {
		t.Fatalf("away: %+v", f)
	}
	if f := nextOf(t, tab1, FramePresence, 5*time.Second); f.Status != StatusAway {
		t.Fatalf("other tab: %+v", f)
	}

	_ = tab1.Close()
	noFrameOf(t, obs, FramePresence, o.PresenceGrace+200*time.Millisecond, nil) // tab2 still open
	closed := time.Now()
	_ = tab2.Close()
	if h.Presence(testWS)["alice"] != StatusAway {
		t.Fatalf("alice should stay present during the grace: %v", h.Presence(testWS))
	}
	f := nextOf(t, obs, FramePresence, 5*time.Second)
	if f.UserID != "alice" || f.Status != StatusOffline || time.Since(closed) < o.PresenceGrace {
		t.Fatalf("offline: %+v after %v", f, time.Since(closed))
	}
	if _, ok := h.Presence(testWS)["alice"]; ok {
		t.Fatal("alice still present")
	}

	// a reload within the grace period is invisible
	tab3 := e.dial("alice", "agent", client.Options{Since: "0"})
	nextOf(t, tab3, FrameHello, 5*time.Second)
	nextOf(t, obs, FramePresence, 5*time.Second) // online again
	_ = tab3.Close()
	time.Sleep(o.PresenceGrace / 3)
	tab4 := e.dial("alice", "agent", client.Options{Since: "0"})
	nextOf(t, tab4, FrameHello, 5*time.Second)
	noFrameOf(t, obs, FramePresence, o.PresenceGrace+200*time.Millisecond, nil)

	// SetPresence (PATCH /me availability) reaches connected clients
	h.SetPresence(testWS, "alice", StatusBusy)
	if f := nextOf(t, obs, FramePresence, 5*time.Second); f.Status != StatusBusy {
		t.Fatalf("busy: %+v", f)
	}
}

// Viewers: the full set per conversation, for collision detection; several
// tabs count once; leaving or disconnecting removes the viewer.
func TestViewers(t *testing.T) {
	e := newEnv(t, defaultOpts(), nil)
	h := e.hub.Load()
	a := e.dial("alice", "agent", client.Options{Since: "0"})
	a2 := e.dial("alice", "agent", client.Options{Since: "0"})
	b := e.dial("bob", "agent", client.Options{Since: "0"})
	for _, c := range []*client.Client{a, a2, b} {
		nextOf(t, c, FrameHello, 5*time.Second)
	}
	viewers := func(c *client.Client, conv string, want ...string) {
		t.Helper()
		f := nextOf(t, c, FrameViewers, 5*time.Second)
		if f.ConversationID != conv || !slices.Equal(f.UserIDs, want) && !(len(want) == 0 && len(f.UserIDs) == 0) {
			t.Fatalf("viewers: %+v, want %s %v", f, conv, want)
		}
	}
	send(t, a, typingMsg{Type: "viewing", ConversationID: "conv1"})
	viewers(b, "conv1", "alice")
	send(t, b, typingMsg{Type: "viewing", ConversationID: "conv1"})
	viewers(a, "conv1", "alice")
	viewers(a, "conv1", "alice", "bob")
	viewers(b, "conv1", "alice", "bob")
	if got := h.Viewers(testWS, "conv1"); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("Viewers %v", got)
	}
	send(t, a2, typingMsg{Type: "viewing", ConversationID: "conv1"}) // same user, second tab
	noFrameOf(t, b, FrameViewers, 100*time.Millisecond, nil)

	// a late joiner gets the set in its hello
	c := e.dial("carol", "agent", client.Options{Since: "0"})
	if hello := nextOf(t, c, FrameHello, 5*time.Second); !slices.Equal(hello.Viewers["conv1"], []string{"alice", "bob"}) {
		t.Fatalf("hello viewers %v", hello.Viewers)
	}
	send(t, a, typingMsg{Type: "viewing", ConversationID: ""}) // alice's tab 2 still views
	noFrameOf(t, b, FrameViewers, 100*time.Millisecond, nil)
	_ = a2.Close()
	viewers(b, "conv1", "bob")
	viewers(c, "conv1", "bob")
	send(t, b, typingMsg{Type: "viewing", ConversationID: "conv2"})
	viewers(c, "conv1")
	viewers(c, "conv2", "bob")
	if got := h.Viewers(testWS, "conv1"); len(got) != 0 {
		t.Fatalf("Viewers after leave %v", got)
	}
}

// Two hubs on one bus are two nodes: presence, viewers, typing and changes
// cross between them; a node that falls silent is dropped.
func TestTwoNodesOneBus(t *testing.T) {
	o := defaultOpts()
	o.NodeHeartbeat = 100 * time.Millisecond
	e1 := newEnv(t, o, nil)
	e2 := newEnvLog(t, o, e1.bus, e1.log)
	e1.log.SetOnCommit(func(cs []inbox.Change) { e2.hub.Load().PublishChanges(cs) }) // committed on node 2
	twoNodes(t, e1, e2)

	// a node that stops heartbeating without saying bye
	ghost := sigMsg{Type: "presence", Node: "ghost-node", WS: testWS, User: "zed", Status: StatusBusy, At: time.Now().UnixNano()}
	b, _ := json.Marshal(ghost)
	obs := e1.dial("obs", "agent", client.Options{Since: "0"})
	nextOf(t, obs, FrameHello, 5*time.Second)
	start := time.Now()
	if err := e1.bus.Publish(context.Background(), SignalsSubject(testWS), b); err != nil {
		t.Fatal(err)
	}
	for {
		f := nextOf(t, obs, FramePresence, 5*time.Second)
		if f.UserID == "zed" && f.Status == StatusBusy {
			break
		}
	}
	for {
		f := nextOf(t, obs, FramePresence, 5*time.Second)
		if f.UserID == "zed" {
			// expiry needs three silent heartbeat periods after the last message
			if f.Status != StatusOffline || time.Since(start) < 3*o.NodeHeartbeat {
				t.Fatalf("ghost: %+v after %v", f, time.Since(start))
			}
			break
		}
	}
}

// twoNodes runs the cross-node checks for two environments sharing a bus
// and a change log.
func twoNodes(t *testing.T, e1, e2 *env) {
	t.Helper()
	a := e1.dial("alice", "agent", client.Options{Since: "0"})
	nextOf(t, a, FrameHello, 10*time.Second)
	b := e2.dial("bob", "agent", client.Options{Since: "0"})
	nextOf(t, b, FrameHello, 10*time.Second)
	waitFor(t, 10*time.Second, "presence on both nodes", func() bool {
		p1, p2 := e1.hub.Load().Presence(testWS), e2.hub.Load().Presence(testWS)
		return p1["bob"] == StatusOnline && p2["alice"] == StatusOnline
	})
	send(t, a, typingMsg{Type: "viewing", ConversationID: "conv1"})
	send(t, a, typingMsg{Type: "typing", ConversationID: "conv1", State: "on"})
	if f := nextOf(t, b, FrameTyping, 10*time.Second); f.UserID != "alice" {
		t.Fatalf("typing across nodes: %+v", f)
	}
	waitFor(t, 10*time.Second, "viewers on node 2", func() bool {
		return slices.Equal(e2.hub.Load().Viewers(testWS, "conv1"), []string{"alice"})
	})
	send(t, b, typingMsg{Type: "presence", Status: StatusBusy})
	waitFor(t, 10*time.Second, "busy on node 1", func() bool { return e1.hub.Load().Presence(testWS)["bob"] == StatusBusy })

	// changes committed via the other node, with concurrent writers
	from := e1.log.Head(testWS)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e1.log.CommitN(testWS, 100)
	}()
	e1.log.CommitN(testWS, 100)
	<-done
	head := e1.log.Head(testWS)
	for _, c := range []*client.Client{a, b} {
		checkContiguous(t, "cross-node", collectSeqs(t, c, head, 20*time.Second), from, head)
	}

	// node 2 shuts down: its users go offline on node 1 at once (bye)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e2.hub.Load().Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	waitFor(t, 5*time.Second, "bob offline", func() bool {
		_, ok := e1.hub.Load().Presence(testWS)["bob"]
		return !ok
	})
}
