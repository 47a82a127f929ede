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
		}
		free := in.opt.Workers - len(sem)
		if free <= 0 {
			continue // a finishing processor notifies again
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
			go func(id string) {
				defer func() { <-sem; in.Notify() }()
				in.processChannel(ctx, id)
			}(id)
		}
	}
}

// processChannel applies a leased channel's pending entries in id order,
// stopping at an entry that is waiting for a retry (order is kept).
func (in *Ingest) processChannel(ctx context.Context, channelID string) {
	defer func() {
		if err := in.db.ReleaseInboundLease(context.WithoutCancel(ctx), channelID, in.owner); err != nil {
			in.log.Error("ingest: release lease", "channel", channelID, "err", err)
		}
	}()
	renewed := time.Now()
	for ctx.Err() == nil {
		entries, err := in.db.PendingInbound(ctx, channelID, 100)
		if err != nil {
			if ctx.Err() == nil {
				in.log.Error("ingest: list pending", "channel", channelID, "err", err)
			}
			return
		}
		if len(entries) == 0 {
			return
		}
		if time.Since(renewed) > in.opt.Lease/3 {
			ok, err := in.db.ExtendInboundLease(ctx, channelID, in.owner, in.opt.Lease)
			if err != nil || !ok {
				return // lost the lease: another node continues
			}
			renewed = time.Now()
		}
		if !in.processBatch(ctx, entries) {
			return // an entry waits for a retry; later entries wait to keep order
		}
		if len(entries) < 100 {
			return
		}
	}
}

// processBatch applies entries (due, in id order) in small batches of one
// transaction each; on a batch failure it falls back to one entry at a time.
// It reports false when it stopped at an entry that must be retried later.
func (in *Ingest) processBatch(ctx context.Context, entries []store.InboundEntry) bool {
	const per = 8
	now := time.Now()
	for i, e := range entries {
		if e.NextAttempt.After(now) {
			entries = entries[:i] // waiting for its retry: it and everything after wait
			break
		}
	}
	stopped := len(entries) == 0
	for start := 0; start < len(entries); start += per {
		chunk := entries[start:min(start+per, len(entries))]
		if ctx.Err() != nil {
			return false
		}
		in.yieldToCommits()
		res, err := in.chans.Resolve(ctx, chunk[0].ChannelID)
		if err == nil && len(chunk) > 1 {
			items := make([]store.InboundBatchItem, len(chunk))
			events := 0
			for i, e := range chunk {
				items[i] = store.InboundBatchItem{Entry: e, Events: in.parse(res, e)}
				events += len(items[i].Events)
			}
			if _, err := in.db.ApplyInboundBatch(ctx, res.Channel, items); err == nil {
				if in.m.Processed != nil {
					in.m.Processed(res.Channel.Kind, events)
				}
				continue
			}
		}
		for _, e := range chunk {
			if err := in.processEntry(ctx, e); err != nil {
				return false
			}
		}
	}
	return !stopped
}

// yieldToCommits waits (briefly, bounded) while a group commit is pending so
// that webhook acknowledgements are not queued behind processing.
func (in *Ingest) yieldToCommits() {
	for i := 0; i < 50 && in.committing.Load(); i++ {
		time.Sleep(200 * time.Microsecond)
	}
}

// processEntry parses and applies one entry; on failure it schedules a retry.
func (in *Ingest) processEntry(ctx context.Context, e store.InboundEntry) error {
	res, err := in.chans.Resolve(ctx, e.ChannelID)
	var events []channel.Event
	if err == nil {
		events = in.parse(res, e)
		_, err = in.db.ApplyInbound(ctx, e, res.Channel, events)
	}
	if err == nil {
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
		Sender:     channel.Party{Identifier: "unknown", Name: "Unknown sender"},
		ChatID:     "unknown",
		Text:       "",
		Error:      reason,
		Raw:        e.Body,
		Timestamp:  e.ReceivedAt,
	}
}
