package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

type ingestOptions struct {
	common
	n           int
	concurrency int
	customers   int
	rate        float64 // > 0: open loop at this many webhooks/s
}

func parseIngest(args []string, stderr io.Writer) (ingestOptions, error) {
	var o ingestOptions
	fs := flag.NewFlagSet("bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.bind(fs)
	fs.IntVar(&o.n, "n", 20000, "webhooks to send (one message each, distinct wamids)")
	fs.IntVar(&o.concurrency, "concurrency", 64, "webhooks in flight (keep-alive connections)")
	fs.IntVar(&o.customers, "customers", 1000, "distinct customers the messages come from")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: send this many webhooks/s on a fixed schedule (latency counts from each one's scheduled time); 0: closed loop, as fast as --concurrency allows")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("bench ingest: unexpected arguments %v", fs.Args())
	}
	switch {
	case o.n < 1 || o.n > 10_000_000:
		return o, errors.New("--n must be in 1..10000000")
	case o.concurrency < 1 || o.concurrency > 4096:
		return o, errors.New("--concurrency must be in 1..4096")
	case o.customers < 1:
		return o, errors.New("--customers must be positive")
	case o.rate < 0:
		return o, errors.New("--rate must not be negative")
	}
	return o, o.check()
}

func runIngest(ctx context.Context, o ingestOptions, stdout, stderr io.Writer) error {
	e, err := open(ctx, o.common, stderr)
	if err != nil {
		return err
	}
	defer e.close()
	w := e.w
	since, err := w.cursor(ctx)
	if err != nil {
		return err
	}

	run := randHex(4)
	hooks := make([]webhook, o.n)
	index := make(map[string]int, o.n)
	now := time.Now().Unix()
	for i := range hooks {
		wamid := fmt.Sprintf("wamid.bench.%s.%d", run, i)
		hooks[i] = w.newWebhook(wamid, fmt.Sprintf("1555%07d", i%o.customers), now, fmt.Sprintf("bench message %d", i))
		index[wamid] = i
	}
	mode := fmt.Sprintf("%d in flight", o.concurrency)
	if o.rate > 0 {
		mode = fmt.Sprintf("%.0f/s on schedule, up to %d in flight", o.rate, o.concurrency)
	}
	fmt.Fprintf(stderr, "bench: sending %d webhooks, %s…\n", o.n, mode)

	hc := keepAliveClient(o.concurrency)
	defer hc.CloseIdleConnections()
	ackLat := make([]time.Duration, o.n)
	ackAt := make([]time.Time, o.n)
	var next, failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if o.rate > 0 {
					// Open loop: webhook i is due at its scheduled time,
					// and a late start (every connection busy) counts as
					// latency: no coordinated omission.
					t0 = start.Add(time.Duration(float64(i) / o.rate * float64(time.Second)))
					if d := time.Until(t0); d > 0 {
						time.Sleep(d)
					}
				}
				err := w.post(ctx, hc, hooks[i])
				t1 := time.Now()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ackLat[i], ackAt[i] = t1.Sub(t0), t1
			}
		})
	}
	wg.Wait()
	ackDur := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	acked := o.n - int(failed.Load())
	var lats []time.Duration
	for i := range ackLat {
		if !ackAt[i].IsZero() {
			lats = append(lats, ackLat[i])
		}
	}

	// Pipeline: poll the change log until every acknowledged message is visible.
	fmt.Fprintf(stderr, "bench: %d acknowledged in %s; waiting until every message is visible…\n", acked, ackDur.Round(time.Millisecond))
	visible := make([]time.Time, o.n)
	seen := 0
	deadline := time.Now().Add(o.timeout)
	cursor := since
	for seen < acked {
		if time.Now().After(deadline) {
			break
		}
		var batch inbox.ChangeBatch
		if err := w.owner.Do(ctx, "GET", w.ws("/sync?limit=1000&since="+cursor), nil, &batch, http.StatusOK); err != nil {
			return fmt.Errorf("poll the change log: %w", err)
		}
		for _, c := range batch.Changes {
			if c.Entity != inbox.EntityMessage || c.Op != inbox.OpUpsert {
				continue
			}
			if i, ok := index[messageExternalID(c.Data)]; ok && visible[i].IsZero() {
				visible[i] = c.At
				seen++
			}
		}
		if batch.Cursor != "" {
			cursor = batch.Cursor
		}
		if !batch.More {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	var toVisible []time.Duration
	var lastVisible time.Time
	for i := range visible {
		if visible[i].IsZero() || ackAt[i].IsZero() {
			continue
		}
		toVisible = append(toVisible, max(0, visible[i].Sub(ackAt[i])))
		if visible[i].After(lastVisible) {
			lastVisible = visible[i]
		}
	}

	ack, vis := Summarize(lats), Summarize(toVisible)
	fmt.Fprintf(stdout, "parley bench ingest: %d webhooks, %s, %d customers; %s\n", o.n, mode, o.customers, e.server)
	t := newTable(stdout)
	t.row("acknowledged", "%d of %d (%d failed) in %.2f s", acked, o.n, failed.Load(), ackDur.Seconds())
	if s, ok := firstErr.Load().(string); ok {
		t.row("first failure", "%s", s)
	}
	t.row("webhooks/s acknowledged", "%.0f", perSecond(acked, ackDur))
	t.row("ack latency", "%s", ack)
	t.row("visible via the API", "%d of %d", seen, acked)
	if seen > 0 {
		total := lastVisible.Sub(start)
		t.row("all visible after", "%.2f s from the first POST", total.Seconds())
		t.row("messages/s processed", "%.0f", perSecond(seen, total))
		t.row("ack → visible", "%s", vis)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if seen < acked {
		return fmt.Errorf("bench ingest: only %d of %d acknowledged messages became visible within %s", seen, acked, o.timeout)
	}
	if failed.Load() > 0 {
		return fmt.Errorf("bench ingest: %d webhooks failed", failed.Load())
	}
	return nil
}
