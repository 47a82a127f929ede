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
	"time"

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

// conn is one WebSocket client.
type conn struct {
	h   *Hub
	ws  *websocket.Conn
	p   Principal
	wss *wsState

	q *sendQueue // changes, signals, pongs: bounded, allocated as used

	// guarded by wss.mu
	live   bool
	cursor int64

	// guarded by h.sig.mu
	viewing string
	typing  map[string]struct{}

	ctx      context.Context // cancelled when the connection ends (ChangeSource calls)
	cancel   context.CancelFunc
	killOnce sync.Once
	killed   chan struct{}
	dead     atomic.Bool
	code     websocket.StatusCode // 0: drop without handshake
	reason   string
	final    string // frame written before the close frame
	pinging  atomic.Bool
}

func (c *conn) kill(code websocket.StatusCode, reason string) { c.killWith(code, reason, "") }

func (c *conn) slowConsumer() {
	if c.dead.Swap(true) {
		return
	}
	c.h.log.Info("realtime: slow consumer disconnected", "ws", c.p.WorkspaceID, "user", c.p.UserID)
	c.h.slow.Add(1)
	c.kill(CloseSlowConsumer, ReasonSlowConsumer)
}

func (c *conn) killWith(code websocket.StatusCode, reason, final string) {
	c.killOnce.Do(func() {
		c.code, c.reason, c.final = code, reason, final
		c.dead.Store(true)
		close(c.killed)
		c.cancel()
	})
}

// resync tells the client its cursor is unusable and closes the connection.
func (c *conn) resync() { c.killWith(CloseResync, ReasonResync, resyncFrame) }

func (c *conn) enqueue(f []byte) {
	if c.dead.Load() {
		return
	}
	if !c.q.push(f) {
		c.slowConsumer()
	}
}

func (c *conn) enqueueSig(f []byte) { c.enqueue(f) }

// sendQueue is a connection's bounded FIFO of frames. Unlike a buffered
// channel it only holds memory for the frames it holds.
type sendQueue struct {
	mu     sync.Mutex
	items  [][]byte
	max    int
	notify chan struct{} // signalled when items become non-empty
}

func newSendQueue(max int) *sendQueue {
	return &sendQueue{max: max, notify: make(chan struct{}, 1)}
}

func (q *sendQueue) push(f []byte) bool {
	q.mu.Lock()
	if len(q.items) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return true
}

// take removes and returns every queued frame.
func (q *sendQueue) take(buf [][]byte) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	buf = append(buf[:0], q.items...)
	clear(q.items)
	q.items = q.items[:0]
	if cap(q.items) > 64 {
		q.items = nil // give back a burst's memory
	}
	return buf
}

func (q *sendQueue) free() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.max - len(q.items)
}

func (c *conn) write(f []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.h.opts.WriteTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, f)
}

// ServeWS upgrades the request to a WebSocket and serves the change stream
// and signals of p's workspace until the connection ends. See the package
// documentation for the protocol.
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
	wsc, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       selectProtocols(r),
		InsecureSkipVerify: true, // the origin was checked above (cookie auth only)
	})
	if err != nil {
		h.log.Debug("realtime: websocket accept", "err", err)
		return
	}
	wsc.SetReadLimit(8 << 10)
	ctx, cancel := context.WithCancel(h.ctx)
	c := &conn{
		h: h, ws: wsc, p: p,
		q:   newSendQueue(h.opts.QueueSize),
		ctx: ctx, cancel: cancel, killed: make(chan struct{}),
	}
	defer cancel()

	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		_ = wsc.Close(CloseServerRestart, ReasonServerRestart)
		return
	}
	h.all[c] = struct{}{}
	h.connWG.Add(1)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.all, c)
		h.mu.Unlock()
		h.connWG.Done()
	}()

	ws, err := h.acquire(p.WorkspaceID)
	if err != nil {
		h.log.Warn("realtime: workspace subscription", "ws", p.WorkspaceID, "err", err)
		_ = wsc.Close(websocket.StatusTryAgainLater, "bus unavailable")
		return
	}
	defer h.release(ws)
	c.wss = ws
	ws.add(c)
	defer ws.remove(c)

	hello := h.sig.connect(c, opts.Since, opts.Status)
	defer h.sig.disconnect(c)
	if err := c.write(hello); err != nil {
		_ = wsc.CloseNow()
		return
	}

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		c.readLoop()
	}()
	defer func() { <-readerDone }()

	c.replay(opts.Since)
	c.writeLoop()
}

// replay sends the change log after since, then makes the connection live.
func (c *conn) replay(since string) {
	h := c.h
	cursor := since
	if _, err := parseSeq(since); err != nil {
		c.resync() // not a cursor this server ever issued
		return
	}
	for {
		for {
			if c.dead.Load() {
				return
			}
			batch, err := h.src.Changes(c.ctx, c.p.WorkspaceID, cursor, h.opts.PageSize)
			if err != nil {
				switch {
				case inbox.IsCode(err, inbox.Conflict), inbox.IsCode(err, inbox.Invalid):
					c.resync()
				case c.ctx.Err() != nil:
				default:
					h.log.Warn("realtime: replay", "ws", c.p.WorkspaceID, "err", err)
					c.kill(websocket.StatusInternalError, "change log unavailable")
				}
				return
			}
			for _, ch := range batch.Changes {
				oc := newOutChange(ch)
				if !allowed(c.p.Role, c.p.UserID, oc) {
					continue
				}
				if err := c.write(oc.frame); err != nil {
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

func (c *conn) readLoop() {
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.kill(0, "")
			return
		}
		f, err := parseClientFrame(b)
		if err != nil {
			continue // unknown or invalid frames are ignored
		}
		switch f.Type {
		case FramePing:
			c.enqueue([]byte(pongFrame))
		case FrameTyping:
			c.h.sig.typing(c, f.ConversationID, f.State == "on")
		case FrameViewing:
			c.h.sig.view(c, f.ConversationID)
		case FramePresence:
			c.h.sig.setStatus(c, f.Status)
		}
	}
}

func (c *conn) writeLoop() {
	t := time.NewTicker(c.h.opts.HeartbeatInterval)
	defer t.Stop()
	var batch [][]byte
	for {
		select {
		case <-c.killed:
			c.finish()
			return
		default:
		}
		select {
		case <-c.killed:
			c.finish()
			return
		case <-c.q.notify:
			batch = c.q.take(batch)
			for i, f := range batch {
				if c.dead.Load() {
					break
				}
				if err := c.write(f); err != nil {
					c.kill(0, "")
				}
				batch[i] = nil
			}
		case <-t.C:
			c.ping()
		}
	}
}

// ping checks the peer; one that does not answer within the heartbeat
// interval is dropped.
func (c *conn) ping() {
	if !c.pinging.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.pinging.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), c.h.opts.HeartbeatInterval)
		defer cancel()
		if err := c.ws.Ping(ctx); err != nil && !c.dead.Load() {
			c.h.log.Debug("realtime: peer did not answer ping", "ws", c.p.WorkspaceID, "user", c.p.UserID)
			c.kill(0, "")
		}
	}()
}

func (c *conn) finish() {
	if c.code == 0 {
		_ = c.ws.CloseNow()
		return
	}
	if c.final != "" {
		if err := c.write([]byte(c.final)); err != nil {
			_ = c.ws.CloseNow()
			return
		}
	}
	if err := c.ws.Close(c.code, c.reason); err != nil && !errors.Is(err, context.Canceled) {
		c.h.log.Debug("realtime: close", "err", err)
	}
}
