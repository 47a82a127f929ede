package realtime

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
	"github.com/parleyhq/parley/internal/inbox"
)

// Close codes sent by the hub. Every one of them means "reconnect and resume
// from your cursor" except CloseResync, which means "take a new snapshot".
const (
	// CloseSlowConsumer: the connection's send queue filled up.
	CloseSlowConsumer websocket.StatusCode = 4000
	// CloseServerRestart: the node is shutting down (graceful restart).
	CloseServerRestart websocket.StatusCode = 4001
	// CloseResync: the cursor is too old or unknown; a {"type":"resync"}
	// frame precedes it.
	CloseResync websocket.StatusCode = 4002

	ReasonSlowConsumer  = "slow consumer: resume from cursor"
	ReasonServerRestart = "server restarting: reconnect"
	ReasonResync        = "resync: take a new snapshot"
)

// Subprotocol is the WebSocket subprotocol a client may offer next to its
// bearer.<token> protocol; the server selects it when offered.
const Subprotocol = "parley.v1"

// Principal is the authenticated user of a connection (the HTTP layer
// authenticates before calling ServeWS).
type Principal struct {
	WorkspaceID string
	UserID      string
	Role        string // owner|admin|agent
	CookieAuth  bool   // authenticated by session cookie: the Origin is checked
}

// ServeOptions are the per-request options of ServeWS.
type ServeOptions struct {
	// Since is the cursor to resume from (the snapshot's cursor, or the last
	// seq the client saw). "" replays the change log from its beginning.
	Since string
	// AllowedOrigins lists extra origins accepted for cookie-authenticated
	// connections, as "https://host[:port]" or host patterns ("*.example.com").
	// The same origin (Origin host = request Host) is always accepted.
	AllowedOrigins []string
	// Status is the user's stored availability, used as the initial
	// presence when the user is not already present elsewhere.
	Status string
}

// BearerFromProtocols returns the token of a "bearer.<token>" entry of the
// Sec-WebSocket-Protocol request header (browsers cannot set Authorization
// on a WebSocket).
func BearerFromProtocols(r *http.Request) (string, bool) {
	for _, p := range offeredProtocols(r) {
		if tok, ok := strings.CutPrefix(p, "bearer."); ok && tok != "" {
			return tok, true
		}
	}
	return "", false
}

func offeredProtocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// selectProtocols returns the server's subprotocol preference: parley.v1 if
// offered, else the offered bearer protocol echoed back (a browser fails the
// handshake when it offered protocols and none is selected).
func selectProtocols(r *http.Request) []string {
	var bearer string
	for _, p := range offeredProtocols(r) {
		if p == Subprotocol {
			return []string{Subprotocol}
		}
		if strings.HasPrefix(p, "bearer.") && bearer == "" {
			bearer = p
		}
	}
	if bearer != "" {
		return []string{bearer}
	}
	return nil
}

// originAllowed checks the Origin of a cookie-authenticated upgrade.
func originAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser: no cross-site risk
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range allowed {
		a = strings.TrimRight(strings.TrimSpace(a), "/")
		switch {
		case a == "":
		case strings.Contains(a, "://"):
			if strings.EqualFold(a, origin) {
				return true
			}
		default:
			if ok, _ := path.Match(strings.ToLower(a), strings.ToLower(u.Host)); ok {
				return true
			}
		}
	}
	return false
}

// conn is one WebSocket client. Between events it costs one goroutine (the
// reader) and small buffers; see writer.go for the write side.
type conn struct {
	h     *Hub
	ws    *websocket.Conn
	nc    *netConn
	p     Principal
	admin bool // owner or admin: may see admin-only entities
	wss   *wsState

	q sendQueue // changes, signals, pongs: bounded, allocated as used

	// guarded by wss.mu
	live   bool
	cursor int64

	// guarded by h.sig.mu
	viewing string
	typing  map[string]struct{}

	// guarded by h.mu
	slot int // heartbeat slot

	killOnce sync.Once
	dead     atomic.Bool
	broken   atomic.Bool          // a write failed midway: no close handshake is possible
	code     websocket.StatusCode // 0: drop without handshake
	reason   string
	final    string        // frame written before the close frame
	finished chan struct{} // closed once the connection is closed
	serving  atomic.Bool   // set once the hello and the replay are written
	pingAt   atomic.Int64  // hub clock of the last ping sent (0: none)
	pongAt   atomic.Int64  // hub clock of the last pong received

	replayMu     sync.Mutex
	replayCancel context.CancelFunc // cancels the replay's change log reads
}

func isAdminRole(role string) bool {
	return role == string(inbox.RoleOwner) || role == string(inbox.RoleAdmin)
}

func (c *conn) kill(code websocket.StatusCode, reason string) { c.killWith(code, reason, "") }

func (c *conn) slowConsumer() {
	if c.dead.Load() {
		return
	}
	c.h.log.Info("realtime: slow consumer disconnected", "ws", c.p.WorkspaceID, "user", c.p.UserID)
	c.killWith(CloseSlowConsumer, ReasonSlowConsumer, "")
}

// killWith ends the connection: the writer that owns it (or a new goroutine
// when none does) writes final, then closes with code.
func (c *conn) killWith(code websocket.StatusCode, reason, final string) {
	c.killOnce.Do(func() {
		c.code, c.reason, c.final = code, reason, final
		if code == CloseSlowConsumer {
			c.h.slow.Add(1)
		}
		c.dead.Store(true)
		c.replayMu.Lock()
		if c.replayCancel != nil {
			c.replayCancel()
		}
		c.replayMu.Unlock()
		q := &c.q
		q.mu.Lock()
		q.dead = true
		idle := !q.owned
		q.owned = true
		q.mu.Unlock()
		if idle {
			go c.finish()
		}
	})
}

// resync tells the client its cursor is unusable and closes the connection.
func (c *conn) resync() { c.killWith(CloseResync, ReasonResync, resyncFrame) }

// enqueue queues frames for c, in order. frames may be shared with other
// connections and must not be modified afterwards. A connection whose queue
// would overflow is closed as a slow consumer.
func (c *conn) enqueue(frames [][]byte) {
	if len(frames) == 0 {
		return
	}
	q := &c.q
	q.mu.Lock()
	if q.dead {
		q.mu.Unlock()
		return
	}
	if len(q.items)+len(frames) > q.max {
		q.mu.Unlock()
		c.slowConsumer()
		return
	}
	if len(q.items) == 0 {
		q.items = frames[:len(frames):len(frames)] // appending copies: the shared array is never written
	} else {
		q.items = append(q.items, frames...)
	}
	c.h.queued.Add(int64(len(frames)))
	idle := !q.owned
	q.owned = true
	q.mu.Unlock()
	if idle {
		c.h.pool.add(c)
	}
}

// take removes a batch of frames from the queue of c (its owner only).
// dead reports that c was killed: the owner must finish it.
func (c *conn) take() (frames [][]byte, dead bool) {
	q := &c.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dead {
		return nil, true
	}
	n, size := 0, 0
	for n < len(q.items) && (n == 0 || size < maxBatchBytes) {
		size += len(q.items[n])
		n++
	}
	frames = q.items[:n:n]
	if n == len(q.items) {
		q.items = nil
	} else {
		q.items = q.items[n:]
	}
	c.h.queued.Add(-int64(n))
	return frames, false
}

// free is how many more frames the queue takes.
func (c *conn) free() int {
	c.q.mu.Lock()
	defer c.q.mu.Unlock()
	return c.q.max - len(c.q.items)
}

// releaseWrite gives up the write side of c after a turn: it stays owned
// (and is scheduled again) while frames are queued or it must be finished.
func (c *conn) releaseWrite() {
	q := &c.q
	q.mu.Lock()
	if len(q.items) == 0 && !q.dead {
		q.owned = false
		q.mu.Unlock()
		return
	}
	q.mu.Unlock()
	c.h.pool.add(c)
}

// writeTurn is one writer pool turn of c: write a batch of queued frames
// with one non-blocking write, or finish c if it was killed.
func (c *conn) writeTurn() {
	frames, dead := c.take()
	if dead {
		go c.finish()
		return
	}
	pending, err := c.nc.writeFrames(frames)
	c.h.framesSent.Add(int64(len(frames)))
	if err != nil {
		c.writeFailed()
	}
	if pending {
		// the socket is full (the peer reads slowly): finish on a goroutine
		// of this connection so the pool never waits for a peer
		go func() {
			if err := c.nc.writeRest(c.h.opts.WriteTimeout); err != nil {
				c.writeFailed()
			}
			c.releaseWrite()
		}()
		return
	}
	c.releaseWrite()
}

// writeFailed marks the byte stream unusable (a frame may be cut) and ends c.
func (c *conn) writeFailed() {
	c.broken.Store(true)
	c.kill(0, "")
}

// writeNow writes encoded frames, waiting up to WriteTimeout (the owner only).
func (c *conn) writeNow(frames ...[]byte) error {
	pending, err := c.nc.writeFrames(frames)
	if pending {
		err = c.nc.writeRest(c.h.opts.WriteTimeout)
	}
	c.h.framesSent.Add(int64(len(frames)))
	if err != nil {
		c.broken.Store(true)
	}
	return err
}

// ServeWS upgrades the request to a WebSocket and serves the change stream
// and signals of p's workspace. It returns once the connection is live (the
// handshake, hello and replay done); the hub serves it from then on until
// it ends. See the package documentation for the protocol.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request, p Principal, opts ServeOptions) {
	if !validToken(p.WorkspaceID) || p.UserID == "" {
		http.Error(w, "bad principal", http.StatusBadRequest)
		return
	}
	if p.CookieAuth && !originAllowed(r, opts.AllowedOrigins) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	h.mu.Lock()
	closing := h.closing
	h.mu.Unlock()
	if closing {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "server restarting", http.StatusServiceUnavailable)
		return
	}
	c := &conn{h: h, p: p, admin: isAdminRole(p.Role), finished: make(chan struct{})}
	hw := &hijackWriter{ResponseWriter: w}
	wsc, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		Subprotocols:       selectProtocols(r),
		InsecureSkipVerify: true, // the origin was checked above (cookie auth only)
		CompressionMode:    websocket.CompressionDisabled,
		OnPongReceived:     func(context.Context, []byte) { c.pongAt.Store(h.now()) },
	})
	if err != nil {
		h.log.Debug("realtime: websocket accept", "err", err)
		return
	}
	if hw.nc == nil { // the library did not hijack through hijackWriter
		h.log.Error("realtime: websocket accept bypassed the connection wrapper")
		_ = wsc.CloseNow()
		return
	}
	wsc.SetReadLimit(8 << 10)
	c.ws, c.nc = wsc, hw.nc
	c.q.max = h.opts.QueueSize
	c.q.owned = true // this goroutine writes until the connection is live

	if !h.register(c) {
		_ = wsc.Close(CloseServerRestart, ReasonServerRestart)
		return
	}
	ws, err := h.acquire(p.WorkspaceID)
	if err != nil {
		h.log.Warn("realtime: workspace subscription", "ws", p.WorkspaceID, "err", err)
		_ = wsc.Close(websocket.StatusTryAgainLater, "bus unavailable")
		h.unregister(c)
		return
	}
	c.wss = ws
	ws.add(c)

	hello := h.sig.connect(c, opts.Since, opts.Status)
	if err := c.writeNow(textFrame(hello)); err != nil {
		// The owner finishes: the frames signals queued meanwhile leave
		// the queue gauge, and the socket is closed.
		c.writeFailed()
		c.finish()
		c.cleanup()
		return
	}
	go c.serveReads()
	c.replay(opts.Since)
	c.serving.Store(true)
	c.releaseWrite()
}

// serveReads reads client frames until the connection ends, then waits for
// the connection to be closed and unregisters it.
func (c *conn) serveReads() {
	c.readLoop()
	c.kill(0, "")
	<-c.finished
	c.cleanup()
}

func (c *conn) cleanup() {
	h := c.h
	h.sig.disconnect(c)
	c.wss.remove(c)
	h.release(c.wss)
	h.unregister(c)
}

// replay sends the change log after since, then makes the connection live.
func (c *conn) replay(since string) {
	h := c.h
	cursor := since
	if _, err := parseSeq(since); err != nil {
		c.resync() // not a cursor this server ever issued
		return
	}
	ctx, cancel := context.WithCancel(h.ctx)
	c.replayMu.Lock()
	c.replayCancel = cancel
	c.replayMu.Unlock()
	defer func() {
		c.replayMu.Lock()
		c.replayCancel = nil
		c.replayMu.Unlock()
		cancel()
	}()
	if c.dead.Load() {
		return
	}
	var frames [][]byte
	for {
		for {
			if c.dead.Load() {
				return
			}
			batch, err := h.src.Changes(ctx, c.p.WorkspaceID, cursor, h.opts.PageSize)
			if err != nil {
				switch {
				case inbox.IsCode(err, inbox.Conflict), inbox.IsCode(err, inbox.Invalid):
					c.resync()
				case ctx.Err() != nil:
				default:
					h.log.Warn("realtime: replay", "ws", c.p.WorkspaceID, "err", err)
					c.kill(websocket.StatusInternalError, "change log unavailable")
				}
				return
			}
			frames = frames[:0]
			for _, ch := range batch.Changes {
				oc := newOutChange(ch)
				if c.allowed(oc) {
					frames = append(frames, oc.frame)
				}
			}
			if len(frames) > 0 {
				if err := c.writeNow(frames...); err != nil {
					c.kill(0, "")
					return
				}
			}
			switch {
			case batch.Cursor != "":
				cursor = batch.Cursor
			case len(batch.Changes) > 0:
				cursor = formatSeq(batch.Changes[len(batch.Changes)-1].Seq)
			}
			if !batch.More || len(batch.Changes) == 0 {
				break
			}
		}
		r, err := parseSeq(cursor)
		if err != nil {
			c.resync()
			return
		}
		if c.dead.Load() || c.wss.join(c, r) {
			return
		}
	}
}

// Frames shared by every connection: the answer to a client's ping frame,
// and the WebSocket ping of the heartbeat.
var (
	pongFrames   = [][]byte{textFrame([]byte(pongFrame))}
	wsPingFrames = [][]byte{wsFrame(opPing, nil)}
)

func (c *conn) readLoop() {
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		f, err := parseClientFrame(b)
		if err != nil {
			continue // unknown or invalid frames are ignored
		}
		switch f.Type {
		case FramePing:
			c.enqueue(pongFrames)
		case FrameTyping:
			c.h.sig.typing(c, f.ConversationID, f.State == "on")
		case FrameViewing:
			c.h.sig.view(c, f.ConversationID)
		case FramePresence:
			c.h.sig.setStatus(c, f.Status)
		}
	}
}

// heartbeat runs once per HeartbeatInterval for each connection (the hub's
// wheel calls it, spread over the interval): a peer that did not answer the
// previous WebSocket ping with a pong is dropped; otherwise it is pinged
// again. The ping is queued like any frame: no goroutine, no timer.
func (c *conn) heartbeat(now int64) {
	if c.dead.Load() || !c.serving.Load() {
		return
	}
	if sent := c.pingAt.Load(); sent != 0 && c.pongAt.Load() < sent {
		c.h.log.Debug("realtime: peer did not answer ping", "ws", c.p.WorkspaceID, "user", c.p.UserID)
		c.kill(0, "")
		return
	}
	c.pingAt.Store(now)
	c.enqueue(wsPingFrames)
}

// finish closes the connection after a kill; it owns the write side.
func (c *conn) finish() {
	defer close(c.finished)
	c.q.mu.Lock()
	c.h.queued.Add(-int64(len(c.q.items)))
	c.q.items = nil
	c.q.mu.Unlock()
	if c.code == 0 || c.broken.Load() {
		_ = c.ws.CloseNow()
		return
	}
	if c.final != "" {
		if err := c.writeNow(textFrame([]byte(c.final))); err != nil {
			_ = c.ws.CloseNow()
			return
		}
	}
	if err := c.ws.Close(c.code, c.reason); err != nil && !errors.Is(err, context.Canceled) {
		c.h.log.Debug("realtime: close", "err", err)
	}
}
