// Package client is a Go client of Parley's realtime WebSocket: it resumes
// from the last seq it saw after any disconnection (slow consumer 4000,
// restart 4001/1012, network drops) with backoff, handles resync by taking a
// new snapshot, and keeps an optional State. It is used by tests and
// `parley bench realtime`, and is the reference for the web app's sync logic.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/parleyhq/parley/internal/inbox"
)

// Close codes of the server (see package realtime).
const (
	CloseSlowConsumer  websocket.StatusCode = 4000
	CloseServerRestart websocket.StatusCode = 4001
	CloseResync        websocket.StatusCode = 4002
)

// ErrResync is returned by Next when the server asked for a resync and
// Options.Snapshot is nil.
var ErrResync = errors.New("client: server asked for a resync and no Snapshot function is set")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("client: closed")

// Frame is any server frame.
type Frame struct {
	Type           string              `json:"type"`
	Seq            int64               `json:"seq,omitempty"`
	Entity         string              `json:"entity,omitempty"`
	Op             string              `json:"op,omitempty"`
	ID             string              `json:"id,omitempty"`
	Data           json.RawMessage     `json:"data,omitempty"`
	At             time.Time           `json:"at,omitzero"`
	ConversationID string              `json:"conversation_id,omitempty"`
	UserID         string              `json:"user_id,omitempty"`
	State          string              `json:"state,omitempty"`
	Status         string              `json:"status,omitempty"`
	UserIDs        []string            `json:"user_ids,omitempty"`
	Cursor         string              `json:"cursor,omitempty"`
	Node           string              `json:"node,omitempty"`
	Presence       map[string]string   `json:"presence,omitempty"`
	Viewers        map[string][]string `json:"viewers,omitempty"`
}

// Change returns the change carried by a "change" frame.
func (f Frame) Change() inbox.Change {
	return inbox.Change{Seq: f.Seq, Entity: f.Entity, Op: f.Op, ID: f.ID, Data: f.Data, At: f.At}
}

// Options configure a Client.
type Options struct {
	Token  string      // API token, offered as the "bearer.<token>" subprotocol
	Cookie string      // or a Cookie header value (session cookie)
	Header http.Header // extra request headers (e.g. Origin)
	Since  string      // cursor to start from ("" = the whole retained log)

	// State, when set, receives every change (and is reset on resync).
	State *State
	// Snapshot is called when the server asks for a resync; the client then
	// resumes from the snapshot's cursor. Without it Next returns ErrResync.
	Snapshot func(ctx context.Context) (Snapshot, error)
	// OnDisconnect is called after each connection ends, with its close code
	// (-1 when the connection ended without a close frame).
	OnDisconnect func(code websocket.StatusCode, reason string)

	MinBackoff time.Duration // default 100ms
	MaxBackoff time.Duration // default 10s
	Buffer     int           // frames buffered for Next (default 256)
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Client is a resuming WebSocket client.
type Client struct {
	url  string
	opts Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	out    chan Frame
	done   chan struct{}
	err    error // set before done is closed

	mu         sync.Mutex
	cur        *websocket.Conn
	cursor     int64
	reconnects int
}

// Dial connects to the realtime endpoint at rawURL (ws:// or wss://) and
// keeps the stream going until Close or ctx is done. The first connection
// must succeed; later ones are retried forever with backoff (except for
// 401/403 answers, which end the client).
func Dial(ctx context.Context, rawURL string, opts Options) (*Client, error) {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	since, err := parseCursor(opts.Since)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	c := &Client{url: rawURL, opts: opts, log: opts.Logger, ctx: cctx, cancel: cancel,
		out: make(chan Frame, opts.Buffer), done: make(chan struct{}), cursor: since}
	conn, err := c.dial(cctx)
	if err != nil {
		cancel()
		return nil, err
	}
	go c.run(conn)
	return c, nil
}

func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	u, err := url.Parse(c.url)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	c.mu.Lock()
	q.Set("since", strconv.FormatInt(c.cursor, 10))
	c.mu.Unlock()
	u.RawQuery = q.Encode()
	h := http.Header{}
	for k, v := range c.opts.Header {
		h[k] = v
	}
	if c.opts.Cookie != "" {
		h.Set("Cookie", c.opts.Cookie)
	}
	dopts := &websocket.DialOptions{HTTPClient: c.opts.HTTPClient, HTTPHeader: h}
	if c.opts.Token != "" {
		dopts.Subprotocols = []string{"parley.v1", "bearer." + c.opts.Token}
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, u.String(), dopts)
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return nil, &fatalError{fmt.Errorf("client: dial: %s: %w", resp.Status, err)}
		}
		return nil, fmt.Errorf("client: dial: %w", err)
	}
	conn.SetReadLimit(64 << 20)
	return conn, nil
}

type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func (c *Client) finish(err error) {
	c.err = err
	close(c.done)
}

func (c *Client) run(conn *websocket.Conn) {
	attempt := 0
	for {
		resync, code, reason, healthy := c.serve(conn)
		if c.opts.OnDisconnect != nil {
			c.opts.OnDisconnect(code, reason)
		}
		if c.ctx.Err() != nil {
			c.finish(ErrClosed)
			return
		}
		if healthy {
			attempt = 0
		}
		if resync {
			if c.opts.Snapshot == nil {
				c.finish(ErrResync)
				return
			}
			if err := c.resync(); err != nil {
				c.finish(err)
				return
			}
		}
		for {
			delay := c.backoff(attempt, code)
			attempt++
			select {
			case <-c.ctx.Done():
				c.finish(ErrClosed)
				return
			case <-time.After(delay):
			}
			var err error
			conn, err = c.dial(c.ctx)
			if err == nil {
				c.mu.Lock()
				c.reconnects++
				c.mu.Unlock()
				break
			}
			var fe *fatalError
			if errors.As(err, &fe) {
				c.finish(err)
				return
			}
			c.log.Debug("realtime client: reconnect failed", "err", err)
			code = -1
		}
	}
}

// backoff is exponential with full jitter; planned closes (slow consumer,
// restart) reconnect after a short jittered delay.
func (c *Client) backoff(attempt int, code websocket.StatusCode) time.Duration {
	base := c.opts.MinBackoff
	if attempt > 0 || (code != CloseSlowConsumer && code != CloseServerRestart && code != websocket.StatusServiceRestart && code != CloseResync) {
		for i := 0; i < attempt && base < c.opts.MaxBackoff; i++ {
			base *= 2
		}
	}
	base = min(base, c.opts.MaxBackoff)
	return base/2 + time.Duration(rand.Int64N(int64(base/2)+1))
}

func (c *Client) resync() error {
	delay := c.opts.MinBackoff
	for {
		snap, err := c.opts.Snapshot(c.ctx)
		if err == nil {
			cur, perr := parseCursor(snap.Cursor)
			if perr != nil {
				return perr
			}
			if c.opts.State != nil {
				if err := c.opts.State.Reset(snap); err != nil {
					return err
				}
			}
			c.mu.Lock()
			c.cursor = cur
			c.mu.Unlock()
			return c.deliver(Frame{Type: "resync", Cursor: snap.Cursor})
		}
		c.log.Warn("realtime client: snapshot failed", "err", err)
		select {
		case <-c.ctx.Done():
			return ErrClosed
		case <-time.After(delay):
		}
		delay = min(delay*2, c.opts.MaxBackoff)
	}
}

func (c *Client) deliver(f Frame) error {
	select {
	case c.out <- f:
		return nil
	case <-c.ctx.Done():
		return ErrClosed
	}
}

// serve reads one connection until it ends.
func (c *Client) serve(conn *websocket.Conn) (resync bool, code websocket.StatusCode, reason string, healthy bool) {
	c.mu.Lock()
	c.cur = conn
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.cur = nil
		c.mu.Unlock()
		_ = conn.CloseNow()
	}()
	stop := context.AfterFunc(c.ctx, func() { _ = conn.Close(websocket.StatusNormalClosure, "client closing") })
	defer stop()
	for {
		_, b, err := conn.Read(context.Background())
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return resync || ce.Code == CloseResync, ce.Code, ce.Reason, healthy
			}
			return resync, -1, err.Error(), healthy
		}
		var f Frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.log.Warn("realtime client: bad frame", "err", err)
			continue
		}
		switch f.Type {
		case "hello":
			healthy = true
		case "resync":
			resync = true
			continue
		case "change":
			c.mu.Lock()
			dup := f.Seq <= c.cursor
			if !dup {
				c.cursor = f.Seq
			}
			c.mu.Unlock()
			if dup {
				continue
			}
			if c.opts.State != nil {
				c.opts.State.Apply(f.Change())
			}
		}
		if c.deliver(f) != nil {
			return resync, -1, "closed", healthy
		}
	}
}

// Next returns the next frame (hello, change, typing, presence, viewers,
// pong, or a client-made {"type":"resync","cursor"} after a new snapshot was
// loaded). Not reading makes the server disconnect the client as a slow
// consumer, which then resumes from its cursor: nothing is lost.
func (c *Client) Next(ctx context.Context) (Frame, error) {
	select {
	case f := <-c.out:
		return f, nil
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	case <-c.done:
		select {
		case f := <-c.out:
			return f, nil
		default:
		}
		return Frame{}, c.err
	}
}

// Send writes a client frame (typing, viewing, presence, ping) on the
// current connection.
func (c *Client) Send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.mu.Lock()
	conn := c.cur
	c.mu.Unlock()
	if conn == nil {
		return errors.New("client: not connected")
	}
	return conn.Write(ctx, websocket.MessageText, b)
}

// Cursor returns the last seq seen, the cursor to resume from.
func (c *Client) Cursor() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strconv.FormatInt(c.cursor, 10)
}

// Reconnects returns how many times the client reconnected.
func (c *Client) Reconnects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconnects
}

// Close stops the client.
func (c *Client) Close() error {
	c.cancel()
	<-c.done
	return nil
}

// Done is closed when the client stops; Err then tells why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client stopped (nil while it runs).
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}
