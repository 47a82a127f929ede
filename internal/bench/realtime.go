package bench

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/realtime"
	"github.com/parleyhq/parley/internal/realtime/client"
)

type realtimeOptions struct {
	common
	rates     rates
	duration  time.Duration
	clients   int
	customers int
	fanout    int
	events    int
	interval  time.Duration
	users     int
	inflight  int
}

func parseRealtime(args []string, stderr io.Writer) (realtimeOptions, error) {
	o := realtimeOptions{rates: rates{200, 1000}}
	fs := flag.NewFlagSet("bench realtime", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.bind(fs)
	fs.Var(&o.rates, "rate", "webhooks per second, comma-separated; each rate is one run")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each rate's run")
	fs.IntVar(&o.clients, "clients", 1, "WebSocket clients (agents) receiving the changes")
	fs.IntVar(&o.customers, "customers", 200, "distinct customers the messages come from")
	fs.IntVar(&o.fanout, "fanout", 0, "fan-out mode: open this many WebSocket connections instead of --clients")
	fs.IntVar(&o.events, "events", 20, "fan-out mode: messages to send")
	fs.DurationVar(&o.interval, "interval", 500*time.Millisecond, "fan-out mode: pause between messages")
	fs.IntVar(&o.users, "users", 4, "agents the connections are spread over")
	fs.IntVar(&o.inflight, "inflight", 256, "most webhooks in flight while pacing")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("bench realtime: unexpected arguments %v", fs.Args())
	}
	switch {
	case o.duration <= 0 || o.duration > time.Hour:
		return o, errors.New("--duration must be in (0, 1h]")
	case o.clients < 1 || o.clients > 100000:
		return o, errors.New("--clients must be in 1..100000")
	case o.fanout < 0 || o.fanout > 200000:
		return o, errors.New("--fanout must be in 0..200000")
	case o.events < 1 || o.events > 100000:
		return o, errors.New("--events must be in 1..100000")
	case o.interval < 0:
		return o, errors.New("--interval must not be negative")
	case int64(o.fanout)*int64(o.events) > 20_000_000:
		return o, errors.New("--fanout × --events must be at most 20 million deliveries")
	case o.users < 1 || o.users > 1000:
		return o, errors.New("--users must be in 1..1000")
	case o.customers < 1:
		return o, errors.New("--customers must be positive")
	case o.inflight < 1 || o.inflight > 10000:
		return o, errors.New("--inflight must be in 1..10000")
	}
	for _, r := range o.rates {
		if float64(r)*o.duration.Seconds() > 1_000_000 {
			return o, fmt.Errorf("--rate %d for %s is more than a million webhooks", r, o.duration)
		}
	}
	return o, o.check()
}

// tracker matches message changes arriving at clients with the webhooks sent.
type tracker struct {
	mu     sync.Mutex
	events map[string]*event // wamid → event
}

type event struct {
	start    time.Time
	arrivals []time.Duration // one per client that saw it
}

func newTracker() *tracker { return &tracker{events: map[string]*event{}} }

func (t *tracker) sent(wamid string, at time.Time) {
	t.mu.Lock()
	t.events[wamid] = &event{start: at}
	t.mu.Unlock()
}

func (t *tracker) arrived(wamid string, at time.Time) {
	t.mu.Lock()
	if e := t.events[wamid]; e != nil {
		e.arrivals = append(e.arrivals, at.Sub(e.start))
	}
	t.mu.Unlock()
}

// complete reports whether every event reached want clients.
func (t *tracker) complete(want int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.events {
		if len(e.arrivals) < want {
			return false
		}
	}
	return true
}

// results returns every arrival latency, each event's last arrival (events
// that reached all want clients) and the number of deliveries missing.
func (t *tracker) results(want int) (all, last []time.Duration, missing int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.events {
		all = append(all, e.arrivals...)
		missing += max(0, want-len(e.arrivals))
		if len(e.arrivals) >= want && len(e.arrivals) > 0 {
			m := e.arrivals[0]
			for _, d := range e.arrivals {
				m = max(m, d)
			}
			last = append(last, m)
		}
	}
	return all, last, missing
}

// listeners are WebSocket clients feeding a tracker.
type listeners struct {
	cancel  context.CancelFunc
	clients []*client.Client
	tr      atomic.Pointer[tracker]
	wg      sync.WaitGroup
}

// connect opens n clients spread over tokens, dialing a few at a time.
func connect(ctx context.Context, w *workspace, tokens []string, n int, since string) (*listeners, error) {
	cctx, cancel := context.WithCancel(ctx)
	l := &listeners{cancel: cancel, clients: make([]*client.Client, n)}
	l.tr.Store(newTracker())
	err := dialAll(cctx, n, cancel, func(i int) error {
		c, err := client.Dial(cctx, w.wsURL(), client.Options{Token: tokens[i%len(tokens)], Since: since,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second})
		if err != nil {
			return err
		}
		l.clients[i] = c
		l.wg.Go(func() { l.read(cctx, c) })
		return nil
	})
	if err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// dialAll runs dial(i) for i in [0, n), a few at a time, and stops (and
// calls cancel) at the first error, which it returns.
func dialAll(ctx context.Context, n int, cancel context.CancelFunc, dial func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var dialers sync.WaitGroup
	for range min(n, 32) {
		dialers.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := dial(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	dialers.Wait()
	return firstErr
}

func (l *listeners) read(ctx context.Context, c *client.Client) {
	for {
		f, err := c.Next(ctx)
		if err != nil {
			return
		}
		if f.Type != "change" || f.Entity != inbox.EntityMessage || f.Op != inbox.OpUpsert {
			continue
		}
		at := time.Now()
		if id := messageExternalID(f.Data); id != "" {
			l.tr.Load().arrived(id, at)
		}
	}
}

func (l *listeners) reconnects() int {
	n := 0
	for _, c := range l.clients {
		if c != nil {
			n += c.Reconnects()
		}
	}
	return n
}

func (l *listeners) close() {
	l.cancel()
	done := make(chan struct{})
	go func() {
		for _, c := range l.clients {
			if c != nil {
				<-c.Done()
			}
		}
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
}

// waitComplete waits until tr saw every event at want clients or timeout.
func waitComplete(ctx context.Context, tr *tracker, want int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for !tr.complete(want) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

func runRealtime(ctx context.Context, o realtimeOptions, stdout, stderr io.Writer) error {
	conns := o.clients
	if o.fanout > 0 {
		conns = o.fanout
		// Before the server starts, so that it inherits the limit too.
		if err := raiseNoFile(uint64(conns) + 1024); err != nil {
			return err
		}
	}
	e, err := open(ctx, o.common, stderr)
	if err != nil {
		return err
	}
	defer e.close()
	w := e.w
	tokens, err := w.agentTokens(ctx, min(o.users, conns))
	if err != nil {
		return err
	}
	since, err := w.cursor(ctx)
	if err != nil {
		return err
	}
	if o.fanout > 0 {
		return runFanout(ctx, o, e, tokens, since, stdout, stderr)
	}

	l, err := connect(ctx, w, tokens, conns, since)
	if err != nil {
		return err
	}
	defer l.close()
	hc := keepAliveClient(o.inflight)
	defer hc.CloseIdleConnections()
	run := randHex(4)
	fmt.Fprintf(stdout, "parley bench realtime: %d client(s) over %d agent(s), %s per rate; %s\n", conns, len(tokens), o.duration, e.server)
	t := newTable(stdout)
	var failures []string
	for ri, rate := range o.rates {
		tr := newTracker()
		l.tr.Store(tr)
		total := int(float64(rate) * o.duration.Seconds())
		fmt.Fprintf(stderr, "bench: %d webhooks/s for %s…\n", rate, o.duration)
		interval := time.Second / time.Duration(rate)
		sem := make(chan struct{}, o.inflight)
		var failed atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		var lastSend time.Time
		for i := range total {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			if ctx.Err() != nil {
				break
			}
			wh := w.newWebhook(fmt.Sprintf("wamid.rt.%s.%d.%d", run, ri, i), fmt.Sprintf("1666%07d", i%o.customers), time.Now().Unix(), "realtime bench")
			sem <- struct{}{}
			lastSend = time.Now()
			tr.sent(wh.wamid, lastSend)
			wg.Go(func() {
				defer func() { <-sem }()
				if err := w.post(ctx, hc, wh); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		sendDur := lastSend.Sub(start)
		waitComplete(ctx, tr, conns, o.timeout)
		all, _, missing := tr.results(conns)
		s := Summarize(all)
		label := fmt.Sprintf("%d/s", rate)
		t.row(label+" sent", "%d webhooks in %.2f s (%.0f/s achieved), %d failed", total, sendDur.Seconds(), perSecond(total-1, sendDur), failed.Load())
		t.row(label+" POST → client", "%s   (%d deliveries, %d missing)", s, s.N, missing)
		if missing > 0 || failed.Load() > 0 {
			failures = append(failures, fmt.Sprintf("rate %d: %d webhooks failed, %d deliveries missing", rate, failed.Load(), missing))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.row("client reconnects", "%d", l.reconnects())
	if err := t.flush(); err != nil {
		return err
	}
	if len(failures) > 0 {
		return fmt.Errorf("bench realtime: %v", failures)
	}
	return nil
}

func runFanout(ctx context.Context, o realtimeOptions, e *env, tokens []string, since string, stdout, stderr io.Writer) error {
	w := e.w
	rss := func() string {
		if e.srv == nil {
			return "n/a (external server)"
		}
		kb, err := rssKB(e.srv.PID())
		if err != nil {
			return "n/a (" + err.Error() + ")"
		}
		return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
	}
	rssIdle := rss()
	run := randHex(4)
	fmt.Fprintf(stderr, "bench: opening %d WebSocket connections…\n", o.fanout)
	t0 := time.Now()
	f, err := openFanout(ctx, w, tokens, o.fanout, o.events, since, "wamid.fan."+run+".")
	if err != nil {
		return err
	}
	defer f.close()
	connectDur := time.Since(t0)
	rssConnected := rss()
	hc := keepAliveClient(4)
	defer hc.CloseIdleConnections()
	fmt.Fprintf(stderr, "bench: sending %d messages…\n", o.events)
	cpu0, cpuErr := serverCPU(e)
	failed := 0
	for i := range o.events {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wh := w.newWebhook(fmt.Sprintf("wamid.fan.%s.%d", run, i), fmt.Sprintf("1777%07d", i%o.customers), time.Now().Unix(), "fan-out bench")
		f.sent[i].Store(time.Now().UnixNano())
		if err := w.post(ctx, hc, wh); err != nil {
			failed++
		}
		time.Sleep(o.interval)
	}
	f.wait(ctx, o.timeout)
	cpu1, _ := serverCPU(e)
	all, last, missing := f.results()
	rssAfter := rss()
	fmt.Fprintf(stdout, "parley bench realtime --fanout: %d connections over %d agent(s), %d messages; %s\n", o.fanout, len(tokens), o.events, e.server)
	t := newTable(stdout)
	t.row("connected", "%d in %.2f s", o.fanout, connectDur.Seconds())
	t.row("POST → last client", "%s   (%d of %d messages reached every client)", Summarize(last), len(last), o.events)
	t.row("POST → each client", "%s   (%d deliveries, %d missing, %d duplicate)", Summarize(all), len(all), missing, f.dups.Load())
	t.row("client reconnects", "%d", f.reconnects.Load())
	t.row("server RSS", "%s idle, %s connected, %s after the messages", rssIdle, rssConnected, rssAfter)
	if cpuErr == nil && o.events > 0 {
		d := cpu1 - cpu0
		t.row("server CPU", "%s per message (%.2f s while sending)", ms(d/time.Duration(o.events)), d.Seconds())
	}
	if err := t.flush(); err != nil {
		return err
	}
	if missing > 0 || failed > 0 || f.dups.Load() > 0 {
		return fmt.Errorf("bench realtime: %d webhooks failed, %d deliveries missing, %d duplicate", failed, missing, f.dups.Load())
	}
	return nil
}

// serverCPU is the CPU time (user+system) the started server has used.
func serverCPU(e *env) (time.Duration, error) {
	if e.srv == nil {
		return 0, errors.New("external server")
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(e.srv.PID()) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime+stime of a /proc/<pid>/stat line (clock ticks of
// 1/100 s, the value Linux reports on every common architecture).
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat")
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// fanout is the client side of --fanout: n lean WebSocket readers. Each
// connection is one goroutine that reads frames into a reused buffer
// (rawWS) and recognises the bench's message changes by scanning bytes (no
// JSON decoding, no channel hand-off, no shared lock), so that on a shared
// machine the clients cost as little CPU as possible next to the server.
// A reader that is disconnected resumes from the last seq it saw, like the
// reference client.
type fanout struct {
	w        *workspace
	tokens   []string
	n        int
	idPrefix []byte // `"external_id":"wamid.fan.<run>.`

	sent     []atomic.Int64 // per message: unix nanos when it was posted
	counts   []atomic.Int64 // per message: connections that received it
	arrivals []atomic.Int64 // [message*n + connection]: latency in ns (0: not yet)

	dups       atomic.Int64
	reconnects atomic.Int64
	gaveUp     atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	conns  []*rawWS // current connection of each reader
	wg     sync.WaitGroup
}

func openFanout(ctx context.Context, w *workspace, tokens []string, n, events int, since, idPrefix string) (*fanout, error) {
	cctx, cancel := context.WithCancel(ctx)
	f := &fanout{w: w, tokens: tokens, n: n, idPrefix: []byte(`"external_id":"` + idPrefix),
		sent: make([]atomic.Int64, events), counts: make([]atomic.Int64, events), arrivals: make([]atomic.Int64, events*n),
		ctx: cctx, cancel: cancel, conns: make([]*rawWS, n)}
	cursor, err := strconv.ParseInt(since, 10, 64)
	if err != nil && since != "" {
		cancel()
		return nil, fmt.Errorf("bad cursor %q", since)
	}
	err = dialAll(cctx, n, cancel, func(i int) error {
		c, err := f.dial(cctx, i, cursor)
		if err != nil {
			return err
		}
		f.wg.Go(func() { f.serve(i, c, cursor) })
		return nil
	})
	if err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

func (f *fanout) dial(ctx context.Context, i int, since int64) (*rawWS, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := dialRawWS(dctx, f.w.wsURL()+"?since="+strconv.FormatInt(since, 10),
		[]string{realtime.Subprotocol, "bearer." + f.tokens[i%len(f.tokens)]})
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if f.ctx.Err() != nil {
		f.mu.Unlock()
		_ = c.conn.Close()
		return nil, f.ctx.Err()
	}
	f.conns[i] = c
	f.mu.Unlock()
	return c, nil
}

// serve reads connection i until the run ends, resuming after disconnects.
func (f *fanout) serve(i int, c *rawWS, cursor int64) {
	backoff := 50 * time.Millisecond
	for {
		err := f.read(i, c, &cursor)
		_ = c.conn.Close()
		if f.ctx.Err() != nil {
			return
		}
		var ce wsCloseError
		if errors.Is(err, errResync) || errors.As(err, &ce) && ce.code == int(realtime.CloseResync) {
			f.gaveUp.Add(1) // a bench run never falls behind the change log
			return
		}
		for {
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(backoff/2 + time.Duration(mrand.Int64N(int64(backoff/2)+1))):
			}
			backoff = min(2*backoff, 2*time.Second)
			if c, err = f.dial(f.ctx, i, cursor); err == nil {
				f.reconnects.Add(1)
				break
			}
		}
	}
}

var errResync = errors.New("resync")

var (
	changePrefix  = []byte(`{"type":"change","seq":`)
	messageUpsert = []byte(`,"entity":"message","op":"upsert",`)
	changeType    = []byte(`"type":"change"`)
	resyncType    = []byte(`"type":"resync"`)
)

// read handles frames until the connection ends.
func (f *fanout) read(i int, c *rawWS, cursor *int64) error {
	for {
		b, err := c.next()
		if err != nil {
			return err
		}
		seq, msg, ok := f.parse(b)
		if !ok {
			if bytes.Contains(b, resyncType) {
				return errResync
			}
			continue
		}
		if seq <= *cursor {
			continue // replayed twice: the resume protocol allows it, the bench ignores it
		}
		*cursor = seq
		if msg < 0 || msg >= len(f.sent) {
			continue
		}
		sent := f.sent[msg].Load()
		if sent == 0 {
			continue
		}
		if !f.arrivals[msg*f.n+i].CompareAndSwap(0, max(1, time.Now().UnixNano()-sent)) {
			f.dups.Add(1)
			continue
		}
		f.counts[msg].Add(1)
	}
}

// parse recognises a change frame: its seq, and the index of the bench
// message it carries (-1 for other changes). ok is false for other frames.
// The server writes change frames as {"type":"change","seq":…,"entity":…,
// "op":…,…}; any other shape is decoded as JSON.
func (f *fanout) parse(b []byte) (seq int64, msg int, ok bool) {
	rest, found := bytes.CutPrefix(b, changePrefix)
	if !found {
		if !bytes.Contains(b, changeType) {
			return 0, 0, false
		}
		var ch struct {
			Type   string          `json:"type"`
			Seq    int64           `json:"seq"`
			Entity string          `json:"entity"`
			Op     string          `json:"op"`
			Data   json.RawMessage `json:"data"`
		}
		if json.Unmarshal(b, &ch) != nil || ch.Type != "change" {
			return 0, 0, false
		}
		msg = -1
		if ch.Entity == inbox.EntityMessage && ch.Op == inbox.OpUpsert {
			msg = f.messageIndex(ch.Data)
		}
		return ch.Seq, msg, true
	}
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		seq = seq*10 + int64(rest[j]-'0')
		j++
	}
	if j == 0 {
		return 0, 0, false
	}
	if !bytes.HasPrefix(rest[j:], messageUpsert) {
		return seq, -1, true
	}
	return seq, f.messageIndex(rest[j:]), true
}

// messageIndex finds the bench message index in `"external_id":"wamid.fan.<run>.<i>"`.
func (f *fanout) messageIndex(b []byte) int {
	k := bytes.Index(b, f.idPrefix)
	if k < 0 {
		return -1
	}
	b = b[k+len(f.idPrefix):]
	n, j := 0, 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' && j < 9 {
		n = n*10 + int(b[j]-'0')
		j++
	}
	if j == 0 || j >= len(b) || b[j] != '"' {
		return -1
	}
	return n
}

// wait waits until every message reached every connection, or timeout.
func (f *fanout) wait(ctx context.Context, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		done := true
		for i := range f.counts {
			if f.counts[i].Load() < int64(f.n) {
				done = false
				break
			}
		}
		if done || f.gaveUp.Load() > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// results returns every arrival latency, each message's last arrival
// (messages that reached every connection) and the deliveries missing.
func (f *fanout) results() (all, last []time.Duration, missing int) {
	for m := range f.sent {
		worst, got := time.Duration(0), 0
		for i := range f.n {
			d := time.Duration(f.arrivals[m*f.n+i].Load())
			if d == 0 {
				missing++
				continue
			}
			got++
			all = append(all, d)
			worst = max(worst, d)
		}
		if got == f.n && got > 0 {
			last = append(last, worst)
		}
	}
	return all, last, missing
}

func (f *fanout) close() {
	f.cancel()
	f.mu.Lock()
	conns := slices.Clone(f.conns)
	f.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			_ = c.conn.Close()
		}
	}
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
}

// raiseNoFile raises RLIMIT_NOFILE to at least want (the hard limit too
// when allowed).
func raiseNoFile(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= want {
		return nil
	}
	if lim.Max < want {
		lim.Max = want
	}
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the open-file limit to %d (ulimit -n): %w", want, err)
	}
	return nil
}

// rawWS is a minimal WebSocket client connection (RFC 6455) for the fan-out
// readers: one goroutine reads whole messages into a reused buffer and
// answers pings and the close handshake itself.
type rawWS struct {
	conn net.Conn
	br   *bufio.Reader
	msg  []byte    // the message being read (reused)
	ctl  [125]byte // a control frame's payload
	out  []byte    // a frame being written (reused)
}

// wsCloseError is the close frame that ended a rawWS.
type wsCloseError struct {
	code   int
	reason string
}

func (e wsCloseError) Error() string { return fmt.Sprintf("websocket closed: %d %s", e.code, e.reason) }

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func dialRawWS(ctx context.Context, rawURL string, protocols []string) (*rawWS, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("%s: only ws:// is supported", rawURL)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var nonce [16]byte
	_, _ = crand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
	if len(protocols) > 0 {
		req += "Sec-WebSocket-Protocol: " + strings.Join(protocols, ", ") + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %s", resp.Status)
	}
	_ = conn.SetDeadline(time.Time{})
	return &rawWS{conn: conn, br: br}, nil
}

// next returns the next data message, valid until the following call.
func (w *rawWS) next() ([]byte, error) {
	w.msg = w.msg[:0]
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		if h[1]&0x80 != 0 {
			return nil, errors.New("websocket: masked frame from the server")
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(w.br, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(w.br, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if op >= 0x8 { // control frame
			if n > uint64(len(w.ctl)) || !fin {
				return nil, errors.New("websocket: bad control frame")
			}
			p := w.ctl[:n]
			if _, err := io.ReadFull(w.br, p); err != nil {
				return nil, err
			}
			switch op {
			case 0x9: // ping
				if err := w.write(0xA, p); err != nil {
					return nil, err
				}
			case 0x8: // close: answer, then end
				ce := wsCloseError{code: 1005}
				if len(p) >= 2 {
					ce.code, ce.reason = int(binary.BigEndian.Uint16(p)), string(p[2:])
				}
				_ = w.write(0x8, p[:min(len(p), 2)])
				return nil, ce
			}
			continue
		}
		if n > 64<<20 || uint64(len(w.msg))+n > 64<<20 {
			return nil, errors.New("websocket: message too large")
		}
		start := len(w.msg)
		w.msg = slices.Grow(w.msg, int(n))[:start+int(n)]
		if _, err := io.ReadFull(w.br, w.msg[start:]); err != nil {
			return nil, err
		}
		if fin {
			return w.msg, nil
		}
	}
}

// write sends one masked frame (control frames only: len(p) <= 125).
func (w *rawWS) write(op byte, p []byte) error {
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], mrand.Uint32())
	b := append(w.out[:0], 0x80|op, 0x80|byte(len(p)))
	b = append(b, mask[:]...)
	for i, c := range p {
		b = append(b, c^mask[i%4])
	}
	w.out = b
	_, err := w.conn.Write(b)
	return err
}
