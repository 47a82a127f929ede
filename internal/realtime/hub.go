package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/parleyhq/parley/internal/inbox"
)

// ChangeSource reads the change log (inbox.Store satisfies it). Changes
// returns the changes with seq > since in seq order, at most limit of them,
// and answers an inbox Conflict error when since is too old or unknown.
type ChangeSource interface {
	Changes(ctx context.Context, wsID, since string, limit int) (inbox.ChangeBatch, error)
}

// HubOptions configure a Hub. Zero values get the documented defaults.
type HubOptions struct {
	Bus     Bus          // required
	Changes ChangeSource // required
	Logger  *slog.Logger

	// QueueSize bounds each connection's send queue (default 1024 frames);
	// a client that lets it fill is closed with CloseSlowConsumer.
	QueueSize int
	// HeartbeatInterval is the WebSocket ping period; a peer that does not
	// answer a ping within one interval is dropped (default 25s). The pings
	// of the connections are spread over the interval.
	HeartbeatInterval time.Duration
	// PresenceGrace is how long a user stays present after their last
	// connection in a workspace closes (default 10s; negative: none).
	PresenceGrace time.Duration
	// TypingTimeout expires a typing "on" that is not refreshed or turned off (default 6s).
	TypingTimeout time.Duration
	// PollInterval is the safety poll of the change log for workspaces with
	// connections, catching a trailing change whose publish was lost
	// (default 5s; negative disables).
	PollInterval time.Duration
	// NodeHeartbeat is the period at which a node republishes its presence
	// and viewers state; a node silent for 3 periods is considered dead and
	// its users go offline (default 10s).
	NodeHeartbeat time.Duration
	// GapWait is how long a gap may stay open before the hub reads the
	// change log: out-of-order publishes from two nodes usually close it by
	// themselves within milliseconds (default 20ms; negative: read at once).
	GapWait time.Duration
	// WriteTimeout bounds a write that waits for the peer: the hello and the
	// replay, and a batch left unwritten because the peer's socket was full
	// (default 10s). A peer that does not take it in time is dropped.
	WriteTimeout time.Duration
	// PageSize is the ChangeSource page used for replay and repair (default 500).
	PageSize int
	// NodeID names this node on the bus (default: a random UUID).
	NodeID string
}

// Hub fans committed changes and ephemeral signals out to WebSocket clients.
type Hub struct {
	opts HubOptions
	log  *slog.Logger
	bus  Bus
	src  ChangeSource
	node string

	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup
	epoch  time.Time

	mu      sync.Mutex
	closing bool
	wss     map[string]*wsState
	all     map[*conn]struct{}
	slots   []map[*conn]struct{} // heartbeat wheel: each slot is pinged once per interval
	nextSl  int                  // slot of the next connection
	tick    int                  // slot of the next heartbeat tick
	connWG  sync.WaitGroup
	unsubs  []func()
	sig     *signals
	pool    *writerPool

	repaired   atomic.Int64 // changes fetched by gap repair or poll (stats)
	slow       atomic.Int64 // connections closed as slow consumers (stats)
	framesSent atomic.Int64 // frames written to sockets (stats)
	queued     atomic.Int64 // frames queued and not yet written (stats)
	accepted   atomic.Int64 // connections accepted (stats)
}

// Stats is a point-in-time view of a hub, for tests and metrics.
type Stats struct {
	Connections     int
	Workspaces      int
	Accepted        int64 // connections accepted since start
	Repaired        int64 // changes delivered after being fetched from the change log by repair or poll
	SlowConsumers   int64 // connections closed with CloseSlowConsumer
	FramesSent      int64 // frames written to WebSockets (changes, signals, hellos, pongs, pings)
	QueuedFrames    int64 // frames queued for connections and not yet written
	WriteQueue      int64 // connections waiting for a writer
	TypingSignals   int64 // typing on/off fanned out to local connections
	PresenceSignals int64 // presence changes fanned out to local connections
	ViewersSignals  int64 // viewer-set changes fanned out to local connections
}

// NewHub starts a hub: it subscribes to the signal subjects and starts the
// background loops (safety poll, typing expiry, node heartbeats).
func NewHub(o HubOptions) (*Hub, error) {
	if o.Bus == nil || o.Changes == nil {
		return nil, errors.New("realtime: NewHub needs Bus and Changes")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 25 * time.Second
	}
	if o.PresenceGrace == 0 {
		o.PresenceGrace = 10 * time.Second
	} else if o.PresenceGrace < 0 {
		o.PresenceGrace = 0
	}
	if o.TypingTimeout <= 0 {
		o.TypingTimeout = 6 * time.Second
	}
	if o.PollInterval == 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.NodeHeartbeat <= 0 {
		o.NodeHeartbeat = 10 * time.Second
	}
	if o.GapWait == 0 {
		o.GapWait = 20 * time.Millisecond
	} else if o.GapWait < 0 {
		o.GapWait = 0
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
	if o.NodeID == "" {
		o.NodeID = uuid.NewString()
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		opts: o, log: o.Logger, bus: o.Bus, src: o.Changes, node: o.NodeID,
		ctx: ctx, cancel: cancel,
		wss: map[string]*wsState{}, all: map[*conn]struct{}{},
		pool: newWriterPool(), epoch: time.Now(),
	}
	nslots := min(max(int(o.HeartbeatInterval/(500*time.Millisecond)), 4), 128)
	h.slots = make([]map[*conn]struct{}, nslots)
	for i := range h.slots {
		h.slots[i] = map[*conn]struct{}{}
	}
	h.sig = newSignals(h)
	for subj, fn := range map[string]func([]byte){
		subjectSignalsPrefix + "*": h.sig.onBus,
		subjectNodes:               h.sig.onNodes,
	} {
		un, err := o.Bus.Subscribe(subj, fn)
		if err != nil {
			h.stopBackground()
			return nil, err
		}
		h.unsubs = append(h.unsubs, un)
	}
	h.sig.announce()
	h.goLoop(h.sig.typingTick(), h.sig.sweepTyping)
	h.goLoop(o.NodeHeartbeat, h.sig.heartbeat)
	h.goLoop(o.HeartbeatInterval/time.Duration(nslots), h.heartbeat)
	if o.PollInterval > 0 {
		h.goLoop(o.PollInterval, h.pollAll)
	}
	return h, nil
}

func (h *Hub) goLoop(every time.Duration, fn func()) {
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-h.ctx.Done():
				return
			case <-t.C:
				fn()
			}
		}
	}()
}

func (h *Hub) stopBackground() {
	h.cancel()
	h.bg.Wait()
	h.mu.Lock()
	unsubs := h.unsubs
	h.unsubs = nil
	h.mu.Unlock()
	for _, un := range unsubs {
		un()
	}
}

// Stats returns current counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	conns, wss := len(h.all), len(h.wss)
	h.mu.Unlock()
	typing, presence, viewers := h.sig.counts()
	return Stats{
		Connections: conns, Workspaces: wss, Accepted: h.accepted.Load(),
		Repaired: h.repaired.Load(), SlowConsumers: h.slow.Load(),
		FramesSent: h.framesSent.Load(), QueuedFrames: h.queued.Load(), WriteQueue: h.pool.waiting.Load(),
		TypingSignals: typing, PresenceSignals: presence, ViewersSignals: viewers,
	}
}

// register adds c to the hub unless it is shutting down.
func (h *Hub) register(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.all[c] = struct{}{}
	c.slot = h.nextSl
	h.slots[c.slot][c] = struct{}{}
	h.nextSl = (h.nextSl + 1) % len(h.slots)
	h.connWG.Add(1)
	h.accepted.Add(1)
	return true
}

func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	delete(h.all, c)
	delete(h.slots[c.slot], c)
	h.mu.Unlock()
	h.connWG.Done()
}

// heartbeat pings the connections of the wheel's next slot: every
// connection once per HeartbeatInterval, spread over the interval, with no
// timer per connection.
func (h *Hub) heartbeat() {
	h.mu.Lock()
	slot := h.slots[h.tick]
	h.tick = (h.tick + 1) % len(h.slots)
	list := make([]*conn, 0, len(slot))
	for c := range slot {
		list = append(list, c)
	}
	h.mu.Unlock()
	now := h.now()
	for _, c := range list {
		c.heartbeat(now)
	}
}

// now is the hub's monotonic clock in nanoseconds (for heartbeats).
func (h *Hub) now() int64 { return int64(time.Since(h.epoch)) + 1 }

// PublishChanges publishes committed changes to the bus, one message per
// workspace. The server wires it as the store's OnCommit hook; every node's
// hub (this one included) receives the changes through its subscription.
// A failed publish is only logged: the gap is repaired from the change log.
func (h *Hub) PublishChanges(changes []inbox.Change) {
	if len(changes) == 0 {
		return
	}
	byWS := map[string][]inbox.Change{}
	var order []string
	for _, c := range changes {
		if _, ok := byWS[c.WorkspaceID]; !ok {
			order = append(order, c.WorkspaceID)
		}
		byWS[c.WorkspaceID] = append(byWS[c.WorkspaceID], c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, ws := range order {
		if !validToken(ws) {
			h.log.Error("realtime: change without a valid workspace id", "ws", ws)
			continue
		}
		b, err := json.Marshal(busChanges{WS: ws, Changes: byWS[ws]})
		if err != nil {
			h.log.Error("realtime: encode changes", "err", err)
			continue
		}
		if err := h.bus.Publish(ctx, ChangesSubject(ws), b); err != nil {
			h.log.Warn("realtime: publish changes", "ws", ws, "err", err)
		}
	}
}

// wsState is the change fan-out state of one workspace on this node.
type wsState struct {
	h     *Hub
	id    string
	ready chan struct{} // closed once the bus subscription is active
	err   error         // subscription error, read after ready
	unsub func()
	refs  int // guarded by h.mu

	mu       sync.Mutex
	conns    map[*conn]struct{}
	known    bool  // last is meaningful
	last     int64 // every change up to last has been delivered
	pending  map[int64]*outChange
	ring     []*outChange // the most recent delivered changes, ascending
	gapTimer bool         // a delayed repair is scheduled
	out      []*outChange // delivered, not yet fanned out to the connections
}

const (
	ringSize   = 512
	maxPending = 10000
)

// acquire returns the workspace state for wsID with an active subscription.
func (h *Hub) acquire(wsID string) (*wsState, error) {
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return nil, errShuttingDown
	}
	ws := h.wss[wsID]
	creator := ws == nil
	if creator {
		ws = &wsState{h: h, id: wsID, ready: make(chan struct{}), conns: map[*conn]struct{}{}, pending: map[int64]*outChange{}}
		h.wss[wsID] = ws
	}
	ws.refs++
	h.mu.Unlock()
	if creator {
		ws.unsub, ws.err = h.bus.Subscribe(ChangesSubject(wsID), ws.onBus)
		if ws.err != nil {
			h.mu.Lock()
			if h.wss[wsID] == ws {
				delete(h.wss, wsID)
			}
			h.mu.Unlock()
		}
		close(ws.ready)
	}
	<-ws.ready
	if ws.err != nil {
		h.release(ws)
		return nil, ws.err
	}
	return ws, nil
}

func (h *Hub) release(ws *wsState) {
	h.mu.Lock()
	ws.refs--
	last := ws.refs == 0
	if last && h.wss[ws.id] == ws {
		delete(h.wss, ws.id)
	}
	h.mu.Unlock()
	if last && ws.unsub != nil {
		ws.unsub()
	}
}

func (ws *wsState) onBus(data []byte) {
	var m busChanges
	if err := json.Unmarshal(data, &m); err != nil {
		ws.h.log.Warn("realtime: bad changes message", "err", err)
		return
	}
	outs := make([]*outChange, 0, len(m.Changes))
	for _, c := range m.Changes {
		outs = append(outs, newOutChange(c))
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	defer ws.fanoutLocked()
	for _, oc := range outs {
		if ws.known && oc.seq <= ws.last {
			continue // duplicate
		}
		if len(ws.pending) >= maxPending {
			continue // repaired later from the change log
		}
		ws.pending[oc.seq] = oc
	}
	if !ws.known {
		return
	}
	ws.drainLocked()
	ws.gapLocked()
}

// gapLocked repairs an open gap, after GapWait unless it is zero.
func (ws *wsState) gapLocked() {
	if len(ws.pending) == 0 {
		return
	}
	if ws.h.opts.GapWait <= 0 {
		ws.repairLocked(false)
		return
	}
	if ws.gapTimer {
		return
	}
	ws.gapTimer = true
	time.AfterFunc(ws.h.opts.GapWait, func() {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		defer ws.fanoutLocked()
		ws.gapTimer = false
		if ws.known && len(ws.pending) > 0 && ws.h.ctx.Err() == nil {
			ws.repairLocked(false)
		}
	})
}

// drainLocked delivers the pending changes that continue the sequence.
func (ws *wsState) drainLocked() {
	for seq := range ws.pending {
		if seq <= ws.last {
			delete(ws.pending, seq)
		}
	}
	for {
		oc, ok := ws.pending[ws.last+1]
		if !ok {
			return
		}
		delete(ws.pending, oc.seq)
		ws.deliverLocked(oc)
	}
}

// repairLocked reads the change log after last and delivers what it finds:
// to fill a gap (force=false: only while changes are pending) or as the
// safety poll (force=true).
func (ws *wsState) repairLocked(force bool) {
	ctx, cancel := context.WithTimeout(ws.h.ctx, 10*time.Second)
	defer cancel()
	defer ws.fanoutLocked()
	for force || len(ws.pending) > 0 {
		batch, err := ws.h.src.Changes(ctx, ws.id, formatSeq(ws.last), ws.h.opts.PageSize)
		if err != nil {
			if inbox.IsCode(err, inbox.Conflict) {
				ws.h.log.Warn("realtime: change log no longer covers the hub's cursor; clients must resync", "ws", ws.id)
				ws.resyncAllLocked()
				return
			}
			if ctx.Err() == nil {
				ws.h.log.Warn("realtime: repair from change log", "ws", ws.id, "err", err)
			}
			return
		}
		progressed := false
		for _, c := range batch.Changes {
			if c.Seq <= ws.last {
				continue
			}
			if c.Seq != ws.last+1 {
				ws.h.log.Warn("realtime: change log has a hole", "ws", ws.id, "after", ws.last, "next", c.Seq)
			}
			oc := ws.pending[c.Seq]
			if oc == nil {
				oc = newOutChange(c)
				ws.h.repaired.Add(1)
			}
			delete(ws.pending, c.Seq)
			ws.deliverLocked(oc)
			progressed = true
		}
		ws.drainLocked()
		ws.fanoutLocked()
		if !batch.More || !progressed {
			return
		}
	}
}

// deliverLocked advances last; the change goes to the connections with the
// next fanoutLocked (before ws.mu is released).
func (ws *wsState) deliverLocked(oc *outChange) {
	ws.last = oc.seq
	ws.ring = append(ws.ring, oc)
	if len(ws.ring) > ringSize {
		ws.ring = append(ws.ring[:0:0], ws.ring[len(ws.ring)-ringSize/2:]...)
	}
	ws.out = append(ws.out, oc)
}

// fanoutLocked queues the delivered changes for every live connection that
// has not seen them and may see them: one pass over the connections per
// batch, and one frame list per visibility class shared by the connections
// of that class (so no allocation per connection).
func (ws *wsState) fanoutLocked() {
	outs := ws.out
	if len(outs) == 0 {
		return
	}
	ws.out = nil
	first, lastSeq := outs[0].seq, outs[len(outs)-1].seq
	public, perUser := true, false
	for _, oc := range outs {
		switch {
		case oc.entity == inbox.EntityReadState:
			public, perUser = false, true
		case adminOnlyEntity(oc.entity):
			public = false
		}
	}
	type class struct {
		admin bool
		user  string
	}
	var all [][]byte
	var classes map[class][][]byte
	if public {
		all = make([][]byte, len(outs))
		for i, oc := range outs {
			all[i] = oc.frame
		}
	} else {
		classes = map[class][][]byte{}
	}
	for c := range ws.conns {
		if !c.live || lastSeq <= c.cursor {
			continue
		}
		// A connection may be ahead of this batch: join sets its cursor to
		// what its replay read, which can include commits whose bus
		// messages arrive only now. It gets the frames after its cursor
		// (this is what keeps it free of duplicates).
		if first <= c.cursor {
			var frames [][]byte
			for _, oc := range outs {
				if oc.seq > c.cursor && c.allowed(oc) {
					frames = append(frames, oc.frame)
				}
			}
			c.cursor = lastSeq
			c.enqueue(frames)
			continue
		}
		c.cursor = lastSeq
		if public {
			c.enqueue(all)
			continue
		}
		k := class{admin: c.admin}
		if perUser {
			k.user = c.p.UserID
		}
		frames, ok := classes[k]
		if !ok {
			for _, oc := range outs {
				if c.allowed(oc) {
					frames = append(frames, oc.frame)
				}
			}
			classes[k] = frames
		}
		c.enqueue(frames)
	}
}

// resyncAllLocked tells every connection of the workspace to take a new
// snapshot and forgets the workspace's position.
func (ws *wsState) resyncAllLocked() {
	for c := range ws.conns {
		c.resync()
	}
	ws.known = false
	ws.ring = nil
	ws.out = nil
	clear(ws.pending)
}

// join makes c live from cursor r (every change up to r has been sent to
// it). It reports false when c must first read more of the change log
// because the hub already delivered changes beyond r that its recent ring
// (or the connection's free queue) cannot cover.
func (ws *wsState) join(c *conn, r int64) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if !ws.known {
		ws.known = true
		ws.last = r
		ws.ring = nil
		c.cursor = r
		c.live = true
		ws.drainLocked()
		ws.fanoutLocked()
		ws.gapLocked()
		return true
	}
	if r < ws.last {
		if len(ws.ring) == 0 || ws.ring[0].seq > r+1 || int(ws.last-r) > c.free() {
			return false
		}
		var frames [][]byte
		for _, oc := range ws.ring {
			if oc.seq > r && c.allowed(oc) {
				frames = append(frames, oc.frame)
			}
		}
		c.enqueue(frames)
		r = ws.last
	}
	c.cursor = r
	c.live = true
	return true
}

func (ws *wsState) add(c *conn) {
	ws.mu.Lock()
	ws.conns[c] = struct{}{}
	ws.mu.Unlock()
}

func (ws *wsState) remove(c *conn) {
	ws.mu.Lock()
	delete(ws.conns, c)
	ws.mu.Unlock()
}

func (ws *wsState) hasLive() bool {
	for c := range ws.conns {
		if c.live {
			return true
		}
	}
	return false
}

// pollAll is the safety poll: for every workspace with live connections it
// reads the change log after the last delivered seq.
func (h *Hub) pollAll() {
	h.mu.Lock()
	list := make([]*wsState, 0, len(h.wss))
	for _, ws := range h.wss {
		list = append(list, ws)
	}
	h.mu.Unlock()
	for _, ws := range list {
		select {
		case <-ws.ready:
		default:
			continue
		}
		ws.mu.Lock()
		if ws.known && ws.hasLive() {
			ws.repairLocked(true)
		}
		ws.mu.Unlock()
	}
}

var errShuttingDown = errors.New("realtime: hub shutting down")

// Shutdown closes every connection with CloseServerRestart so clients resume
// from their cursor on another node or after the restart, announces the
// node's departure, and stops the hub. It waits for connections to finish
// until ctx is done, then drops the rest.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return nil
	}
	h.closing = true
	conns := make([]*conn, 0, len(h.all))
	for c := range h.all {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.kill(CloseServerRestart, ReasonServerRestart)
	}
	done := make(chan struct{})
	go func() { h.connWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		for _, c := range conns {
			_ = c.ws.CloseNow()
		}
		<-done
	}
	h.sig.goodbye()
	h.stopBackground()
	return err
}
