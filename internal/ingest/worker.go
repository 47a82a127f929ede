package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/store"
)

// dispatch claims channels with pending entries (a lease per channel, so one
// processor per channel across all nodes) and hands them to at most Workers
// concurrent processors. It is woken by Notify after each group commit and
// polls slowly for entries appended by other nodes.
func (in *Ingest) dispatch(ctx context.Context) {
	sem := make(chan struct{}, in.opt.Workers)
	poll := time.NewTicker(in.opt.PollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			for range in.opt.Workers { // wait for processors
				sem <- struct{}{}
			}
			return
		case <-in.wake:
		case <-poll.C:
			in.Notify() // entries of other nodes, retries that became due
			continue
		}
		free := in.opt.Workers - len(sem)
		if free <= 0 {
			continue // a finishing processor notifies again
		}
		if !in.needClaim() {
			continue
		}
		chans, err := in.db.ClaimInboundChannels(ctx, in.owner, in.opt.Lease, free)
		if err != nil {
			if ctx.Err() == nil {
				in.log.Error("ingest: claim channels", "err", err)
			}
			continue
		}
		for _, id := range chans {
			sem <- struct{}{}
			in.setActive(id, true)
			go func(id string) {
				defer func() { in.setActive(id, false); <-sem; in.Notify() }()
				in.processChannel(ctx, id)
			}(id)
		}
	}
}

// needClaim reports whether a claim may find something: after Notify (a
// finished processor, a poll, another node), or when entries were appended
// to a channel this node is not processing. A channel being processed here
// needs no claim: its processor reads its new entries before it stops, and
// its stopping notifies.
func (in *Ingest) needClaim() bool {
	in.claimMu.Lock()
	defer in.claimMu.Unlock()
	need := in.recheck
	for ch := range in.fresh {
		need = need || !in.active[ch]
	}
	in.recheck = false
	clear(in.fresh)
	return need
}

func (in *Ingest) setActive(channelID string, on bool) {
	in.claimMu.Lock()
	if on {
		in.active[channelID] = true
	} else {
		delete(in.active, channelID)
	}
	in.claimMu.Unlock()
}

// processChannel applies a leased channel's pending entries in id order,
// stopping at an entry that is waiting for a retry (order is kept). The next
// page of entries is read and parsed while one is applied, so the write
// connection does not wait for reads and parsing.
func (in *Ingest) processChannel(ctx context.Context, channelID string) {
	defer func() {
		if err := in.db.ReleaseInboundLease(context.WithoutCancel(ctx), channelID, in.owner); err != nil {
			in.log.Error("ingest: release lease", "channel", channelID, "err", err)
		}
	}()
	renewed := time.Now()
	lingered := false
	after := "" // the last entry handed to processBatch
	next := in.readPage(ctx, channelID, after)
	for ctx.Err() == nil {
		var p page
		select {
		case p = <-next:
		case <-ctx.Done():
			return
		}
		if p.err != nil {
			if ctx.Err() == nil {
				in.log.Error("ingest: list pending", "channel", channelID, "err", p.err)
			}
			return
		}
		if len(p.entries) == 0 {
			if lingered {
				return
			}
			// Caught up: keep the lease a moment for the next entries
			// instead of releasing and claiming it again for each group.
			lingered = true
			t := time.NewTimer(linger)
			select {
			case <-p.appended:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
			next = in.readPage(ctx, channelID, after)
			continue
		}
		lingered = false
		if time.Since(renewed) > in.opt.Lease/3 {
			ok, err := in.db.ExtendInboundLease(ctx, channelID, in.owner, in.opt.Lease)
			if err != nil || !ok {
				return // lost the lease: another node continues
			}
			renewed = time.Now()
		}
		// Ids follow commit order only with one writer (SQLite): elsewhere
		// an entry committed late may sort before the last one read.
		if in.singleWriter() {
			after = p.entries[len(p.entries)-1].ID
			next = in.readPage(ctx, channelID, after)
		}
		if !in.processBatch(ctx, p) {
			return // an entry waits for a retry; later entries wait to keep order
		}
		if !in.singleWriter() {
			next = in.readPage(ctx, channelID, "")
		}
	}
}

// page is a page of a channel's pending entries, parsed (events[i] is set
// where parsed[i]: not when the channel cannot be resolved, nor from the
// first entry waiting for a retry on).
type page struct {
	entries  []store.InboundEntry
	events   [][]channel.Event
	parsed   []bool
	appended <-chan struct{} // closed at the first group commit after the read began
	err      error
}

// readPage reads and parses, in the background, the channel's pending
// entries after the entry id after.
func (in *Ingest) readPage(ctx context.Context, channelID, after string) <-chan page {
	out := make(chan page, 1)
	go func() {
		p := page{appended: in.appendSignal()} // before the read: no commit is missed
		p.entries, p.err = in.db.PendingInboundAfter(ctx, channelID, after, pendingPage)
		p.events, p.parsed = make([][]channel.Event, len(p.entries)), make([]bool, len(p.entries))
		if p.err == nil && len(p.entries) > 0 {
			if res, err := in.chans.Resolve(ctx, channelID); err == nil {
				now := time.Now()
				for i, e := range p.entries {
					if e.NextAttempt.After(now) {
						break
					}
					p.events[i], p.parsed[i] = in.parse(res, e), true
				}
			}
		}
		out <- p
	}()
	return out
}

// Batching of the ingest workers. A worker transaction applies at least
// batchMin entries, then continues up to batchMax entries or its budget.
//
// On SQLite, acknowledgements and processing share one write connection: a
// worker transaction takes the webhooks that wait for their acknowledgement
// into itself just before it commits, so they wait at most about one
// budget, and the worker never stops to make way for a group commit.
const (
	batchMin = 2
	batchMax = 64
	// applyBudget bounds a SQLite worker transaction: long enough to
	// amortise its commit over many entries when it catches up a backlog.
	applyBudget = 6 * time.Millisecond
	// ackWaitMax ends a SQLite worker transaction early once a webhook has
	// waited this long for its acknowledgement (the transaction carries
	// it, so it waits about this long plus the commit).
	ackWaitMax = 3 * time.Millisecond
	// pgApplyBudget is applyBudget on PostgreSQL, where acknowledgements
	// do not wait for workers: a longer transaction amortises its commit
	// (an fsync).
	pgApplyBudget = 25 * time.Millisecond
	pendingPage   = 128                   // entries read (and parsed) ahead
	linger        = 20 * time.Millisecond // a caught-up processor waits this long for more
)

// processBatch applies a page's entries (in id order) in batches of one
// transaction each; on a batch failure it falls back to one entry at a time.
// It reports false when it stopped at an entry that must be retried later
// (the entries after it must wait, and the page read ahead with them).
func (in *Ingest) processBatch(ctx context.Context, p page) bool {
	entries := p.entries
	now := time.Now()
	stopped := false
	for i, e := range entries {
		if e.NextAttempt.After(now) {
			entries = entries[:i] // waiting for its retry: it and everything after wait
			stopped = true
			break
		}
	}
	items := make([]store.InboundBatchItem, len(entries))
	// A transaction looks up what its batch needs up front: a batch much
	// larger than what the budget lets one transaction apply would be
	// looked up again and again. So a batch is at most twice what the last
	// transaction applied.
	want := batchMax
	for start := 0; start < len(entries); {
		if ctx.Err() != nil {
			return false
		}
		chunk := entries[start:min(start+want, len(entries))]
		res, err := in.chans.Resolve(ctx, chunk[0].ChannelID)
		if err == nil {
			for i := range chunk {
				if !p.parsed[start+i] {
					p.events[start+i], p.parsed[start+i] = in.parse(res, chunk[i]), true
				}
				items[start+i] = store.InboundBatchItem{Entry: chunk[i], Events: p.events[start+i]}
			}
			batch := items[start : start+len(chunk)]
			began := time.Now()
			budget := pgApplyBudget
			if in.singleWriter() {
				budget = applyBudget
			}
			opts := store.ApplyOptions{Stop: func(n int) bool {
				return n >= batchMin && (time.Since(began) >= budget || (in.singleWriter() && in.ackWait() >= ackWaitMax))
			}}
			var acks []appendReq
			var ackEntries []store.InboundEntry
			if in.singleWriter() && in.started.Load() {
				opts.Append = func() []store.InboundEntry {
					acks, ackEntries = in.takeWaiting()
					return ackEntries
				}
			}
			n, _, err := in.db.ApplyInboundBatchUntil(ctx, res.Channel, batch, opts)
			if err != nil {
				in.putBack(acks)
			} else {
				in.acked(acks, ackEntries, true)
			}
			if err == nil {
				for _, it := range batch[:n] {
					in.answer(ctx, res, it.Events)
					in.lookupGroups(ctx, res, it.Events)
					in.lookupProfiles(ctx, res, it.Events)
				}
				if in.m.Processed != nil {
					events := 0
					for _, it := range batch[:n] {
						events += len(it.Events)
					}
					in.m.Processed(res.Channel.Kind, events)
				}
				start += n
				want = min(batchMax, max(2*n, 8))
				continue
			}
		}
		// Isolate a bad entry: apply the chunk one by one (each entry
		// records its own failure).
		for i, e := range chunk {
			var events []channel.Event // parsed already when the batch was tried
			if p.parsed[start+i] {
				events = p.events[start+i]
			}
			if err := in.processEntry(ctx, e, events); err != nil {
				return false
			}
		}
		start += len(chunk)
	}
	return !stopped
}

// singleWriter reports whether acknowledgements and processing share one
// write connection (SQLite), so that a worker transaction carries the
// waiting acknowledgements. PostgreSQL writes concurrently: there they
// would only wait longer.
func (in *Ingest) singleWriter() bool { return in.db.Dialect() == "sqlite" }

// processEntry applies one entry (parsing it unless events are given); on
// failure it schedules a retry.
func (in *Ingest) processEntry(ctx context.Context, e store.InboundEntry, events []channel.Event) error {
	res, err := in.chans.Resolve(ctx, e.ChannelID)
	if err == nil {
		if events == nil {
			events = in.parse(res, e)
		}
		_, err = in.db.ApplyInbound(ctx, e, res.Channel, events)
	}
	if err == nil {
		in.answer(ctx, res, events)
		in.lookupGroups(ctx, res, events)
		in.lookupProfiles(ctx, res, events)
		if in.m.Processed != nil {
			in.m.Processed(res.Channel.Kind, len(events))
		}
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	if inbox.IsCode(err, inbox.NotFound) && res.Adapter == nil {
		// The channel was deleted: nothing can ever apply this entry.
		_ = in.db.FailInbound(ctx, e.ID, err.Error(), time.Now(), true)
		return nil
	}
	giveUp := e.Attempts+1 >= in.opt.MaxAttempts
	retry := time.Now().Add(backoff(e.Attempts))
	in.log.Warn("ingest: apply failed", "entry", e.ID, "channel", e.ChannelID, "attempt", e.Attempts+1, "give_up", giveUp, "err", err)
	if in.m.Failed != nil {
		in.m.Failed(res.Channel.Kind, err)
	}
	if ferr := in.db.FailInbound(ctx, e.ID, err.Error(), retry, giveUp); ferr != nil {
		in.log.Error("ingest: record failure", "entry", e.ID, "err", ferr)
	}
	if giveUp {
		return nil // move on: the entry is kept (state failed) for reprocess
	}
	return err
}

// answer tells the provider, in the background, that the applied events
// that expect an answer (Telegram callback queries) were handled. It is best
// effort: a failure is logged at debug level (a redelivered webhook is
// answered again and refused; the provider's query expires on its own).
func (in *Ingest) answer(ctx context.Context, res Resolved, events []channel.Event) {
	an, ok := res.Adapter.(channel.Answerer)
	if !ok {
		return
	}
	for _, ev := range events {
		if ev.QueryID == "" {
			continue
		}
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			select {
			case in.answering <- struct{}{}:
				defer func() { <-in.answering }()
			case <-ctx.Done():
				return
			}
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := an.Answer(actx, res.Config, ev); err != nil && ctx.Err() == nil {
				in.log.Debug("ingest: answer the provider's query", "channel", res.Channel.ID, "kind", res.Channel.Kind, "err", err)
			}
		}()
	}
}

// backoff is the wait before processing attempt n+1: 1s doubling, capped at 5 min, with jitter.
func backoff(attempts int) time.Duration {
	d := time.Second << min(attempts, 9)
	if d > 5*time.Minute {
		d = 5 * time.Minute
	}
	return d/2 + rand.N(d/2+1)
}

// parse runs the adapter's parser. An error or a panic turns the whole body
// into one unsupported message keeping the raw payload: nothing is dropped.
func (in *Ingest) parse(res Resolved, e store.InboundEntry) (events []channel.Event) {
	req := channel.Request{Method: e.Method, URL: e.URL, Header: e.Header, Body: e.Body}
	if _, q, ok := strings.Cut(e.URL, "?"); ok {
		req.Query, _ = url.ParseQuery(q)
	}
	defer func() {
		if p := recover(); p != nil {
			in.log.Error("ingest: adapter parse panicked", "kind", res.Channel.Kind, "entry", e.ID, "panic", fmt.Sprint(p))
			events = []channel.Event{Unparsed(e, fmt.Sprintf("parser panic: %v", p))}
		}
	}()
	evs, err := res.Adapter.Parse(res.Config, req)
	if err != nil {
		in.log.Warn("ingest: unparseable payload kept as unsupported", "kind", res.Channel.Kind, "entry", e.ID, "err", err)
		return []channel.Event{Unparsed(e, err.Error())}
	}
	return evs
}

// Unparsed is the event an unreadable payload becomes: one unsupported
// message from an unknown sender, keyed by the entry so replays are no-ops.
func Unparsed(e store.InboundEntry, reason string) channel.Event {
	return channel.Event{
		Type:       channel.EventMessage,
		ExternalID: store.UnparsedExternalID(e.ID),
		Direction:  "inbound",
		Kind:       inbox.KindUnsupported,
		Sender:     store.UnknownSender,
		ChatID:     "unknown",
		Text:       "",
		Error:      reason,
		Raw:        e.Body,
		Timestamp:  e.ReceivedAt,
	}
}
