package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
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
func connect(ctx context.Context, w *workspace, tokens []string, n, buffer int, since string) (*listeners, error) {
	cctx, cancel := context.WithCancel(ctx)
	l := &listeners{cancel: cancel, clients: make([]*client.Client, n)}
	l.tr.Store(newTracker())
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var dialers sync.WaitGroup
	for range min(n, 32) {
		dialers.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || cctx.Err() != nil {
					return
				}
				c, err := client.Dial(cctx, w.wsURL(), client.Options{Token: tokens[i%len(tokens)], Since: since, Buffer: buffer,
					MinBackoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					cancel()
					return
				}
				l.clients[i] = c
				l.wg.Go(func() { l.read(cctx, c) })
			}
		})
	}
	dialers.Wait()
	if firstErr != nil {
		l.close()
		return nil, firstErr
	}
	return l, nil
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

	l, err := connect(ctx, w, tokens, conns, 0, since)
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
	fmt.Fprintf(stderr, "bench: opening %d WebSocket connections…\n", o.fanout)
	t0 := time.Now()
	l, err := connect(ctx, w, tokens, o.fanout, 8, since)
	if err != nil {
		return err
	}
	defer l.close()
	connectDur := time.Since(t0)
	rssConnected := rss()
	tr := newTracker()
	l.tr.Store(tr)
	hc := keepAliveClient(4)
	defer hc.CloseIdleConnections()
	run := randHex(4)
	fmt.Fprintf(stderr, "bench: sending %d messages…\n", o.events)
	failed := 0
	for i := range o.events {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wh := w.newWebhook(fmt.Sprintf("wamid.fan.%s.%d", run, i), fmt.Sprintf("1777%07d", i%o.customers), time.Now().Unix(), "fan-out bench")
		tr.sent(wh.wamid, time.Now())
		if err := w.post(ctx, hc, wh); err != nil {
			failed++
		}
		time.Sleep(o.interval)
	}
	waitComplete(ctx, tr, o.fanout, o.timeout)
	all, last, missing := tr.results(o.fanout)
	rssAfter := rss()
	fmt.Fprintf(stdout, "parley bench realtime --fanout: %d connections over %d agent(s), %d messages; %s\n", o.fanout, len(tokens), o.events, e.server)
	t := newTable(stdout)
	t.row("connected", "%d in %.2f s", o.fanout, connectDur.Seconds())
	t.row("POST → last client", "%s   (%d of %d messages reached every client)", Summarize(last), len(last), o.events)
	t.row("POST → each client", "%s   (%d deliveries, %d missing)", Summarize(all), len(all), missing)
	t.row("client reconnects", "%d", l.reconnects())
	t.row("server RSS", "%s idle, %s connected, %s after the messages", rssIdle, rssConnected, rssAfter)
	if err := t.flush(); err != nil {
		return err
	}
	if missing > 0 || failed > 0 {
		return fmt.Errorf("bench realtime: %d webhooks failed, %d deliveries missing", failed, missing)
	}
	return nil
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
