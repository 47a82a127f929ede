package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/store"
)

// Metrics are optional callbacks the server wires to Prometheus.
type Metrics struct {
	Received   func(kind string)             // a verified webhook was logged
	Unverified func(kind string)             // a webhook failed verification
	AckLatency func(d time.Duration)         // time from request to ack
	Processed  func(kind string, events int) // an inbound entry was applied
	Failed     func(kind string, err error)  // an entry could not be applied (will retry)
	// Committed: a transaction committed n webhooks for acknowledgement,
	// a group commit's or (byWorker) an ingest worker's.
	Committed func(n int, byWorker bool)
}

// Options configure an Ingest.
type Options struct {
	DB       *store.DB
	Channels *Channels
	Logger   *slog.Logger
	Metrics  Metrics

	MaxBodyBytes int64         // webhook body cap (default 1 MiB)
	BatchWindow  time.Duration // how long a group commit collects appends (default 1ms)
	BatchMax     int           // entries per group commit (default 256)
	Workers      int           // concurrent channel processors (default 4; -1: this node only acknowledges, others process)
	Lease        time.Duration // channel lease (default 30s)
	PollInterval time.Duration // fallback poll for other nodes' entries (default 2s)
	MaxAttempts  int           // processing attempts before an entry is given up (default 10)
}

// Ingest is the inbound pipeline.
type Ingest struct {
	db    *store.DB
	chans *Channels
	log   *slog.Logger
	m     Metrics
	opt   Options
	owner string

	wake    chan struct{}
	stopped chan struct{} // closed when the committer has stopped

	// Webhooks waiting for their append to commit. Whoever holds the
	// write connection next takes them into its transaction: the group
	// committer, or (SQLite) an ingest worker just before its commit.
	ackMu     sync.Mutex
	waiting   []appendReq
	ackClosed error         // set when the committer stops: appends fail
	ackSig    chan struct{} // something waits (cap 1)
	ackFull   chan struct{} // a whole batch waits (cap 1)

	// Claims are skipped when a wake-up can only be about channels this
	// node is processing already (their processors pick the new entries
	// up, and a finishing processor forces a claim).
	claimMu sync.Mutex
	active  map[string]bool // channels with a processor on this node
	fresh   map[string]bool // channels appended to since the last claim
	recheck bool            // claim on the next wake-up whatever fresh says
	// appendedSig is closed (and replaced) after every group commit.
	appendedSig chan struct{}

	// answering bounds the provider answers (channel.Answerer) in flight.
	answering chan struct{}
	// group title lookups (channel.ChatDirectory)
	groups *lookupQueue
	// contact profile lookups (channel.ProfileLookup)
	profiles     *lookupQueue
	profileSlots chan struct{} // bounds the profile calls in flight

	startOnce sync.Once
	started   atomic.Bool
	wg        sync.WaitGroup
}

type appendReq struct {
	entry store.InboundEntry
	done  chan error
	at    time.Time // when it started waiting
}

// New makes an Ingest. Call Start to run the committer and the workers.
func New(o Options) *Ingest {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.BatchWindow <= 0 {
		o.BatchWindow = time.Millisecond
	}
	if o.BatchMax <= 0 {
		o.BatchMax = 256
	}
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Ingest{
		db: o.DB, chans: o.Channels, log: o.Logger, m: o.Metrics, opt: o,
		owner:   hex.EncodeToString(b[:]),
		active:  map[string]bool{},
		fresh:   map[string]bool{},
		recheck: true,

		appendedSig:  make(chan struct{}),
		answering:    make(chan struct{}, 8),
		groups:       newLookupQueue(groupLookupEvery, groupTriedMax),
		profiles:     newLookupQueue(profileLookupEvery, profileTriedMax),
		profileSlots: make(chan struct{}, profileLookupsMax),
		ackSig:       make(chan struct{}, 1),
		ackFull:      make(chan struct{}, 1),
		wake:         make(chan struct{}, 1),
		stopped:      make(chan struct{}),
	}
}

// Start runs the group committer and the workers until ctx ends. Wait waits
// for them after that.
func (in *Ingest) Start(ctx context.Context) {
	in.startOnce.Do(func() {
		in.started.Store(true)
		in.wg.Add(1)
		go func() { defer in.wg.Done(); defer close(in.stopped); in.commitLoop(ctx) }()
		if in.opt.Workers > 0 {
			in.wg.Add(1)
			go func() { defer in.wg.Done(); in.dispatch(ctx) }()
		}
		in.Notify()
	})
}

// Wait blocks until the goroutines started by Start have stopped.
func (in *Ingest) Wait() { in.wg.Wait() }

// Notify wakes the workers (after an append, or when another node says so)
// and makes them look for claimable channels.
func (in *Ingest) Notify() {
	in.claimMu.Lock()
	in.recheck = true
	in.claimMu.Unlock()
	in.wakeUp()
}

// appended records the channels of a committed group and wakes the workers.
func (in *Ingest) appended(entries []store.InboundEntry) {
	in.claimMu.Lock()
	for _, e := range entries {
		in.fresh[e.ChannelID] = true
	}
	close(in.appendedSig)
	in.appendedSig = make(chan struct{})
	in.claimMu.Unlock()
	in.wakeUp()
}

// appendSignal returns a channel closed at the next group commit.
func (in *Ingest) appendSignal() <-chan struct{} {
	in.claimMu.Lock()
	defer in.claimMu.Unlock()
	return in.appendedSig
}

func (in *Ingest) wakeUp() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// ---- webhook ----

// apiError writes the API error body.
func apiError(w http.ResponseWriter, status int, code inbox.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func statusOf(err error) (int, inbox.Code) {
	switch c := inbox.ErrorCode(err); c {
	case inbox.NotFound:
		return http.StatusNotFound, c
	case inbox.Unauthorized:
		return http.StatusUnauthorized, c
	case inbox.Invalid:
		return http.StatusBadRequest, c
	case inbox.Forbidden:
		return http.StatusForbidden, c
	case inbox.TooLarge:
		return http.StatusRequestEntityTooLarge, c
	default:
		return http.StatusInternalServerError, inbox.Internal
	}
}

// ServeWebhook handles GET|POST /webhooks/{channel_id}: a GET answers the
// provider's handshake; a POST is verified over its raw bytes, appended to
// the inbound log and acknowledged only once that append is committed.
func (in *Ingest) ServeWebhook(w http.ResponseWriter, r *http.Request, channelID string) {
	start := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, in.opt.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			apiError(w, http.StatusRequestEntityTooLarge, inbox.TooLarge, "webhook body too large")
			return
		}
		apiError(w, http.StatusBadRequest, inbox.Invalid, "cannot read the request body")
		return
	}
	res, err := in.chans.Resolve(r.Context(), channelID)
	if err != nil {
		st, code := statusOf(err)
		if code == inbox.Internal {
			in.log.Error("webhook: resolve channel", "channel", channelID, "err", err)
		}
		apiError(w, st, code, inbox.ErrorMessage(err))
		return
	}
	url := res.Config.WebhookURL
	if r.URL.RawQuery != "" {
		url += "?" + r.URL.RawQuery
	}
	req := channel.Request{Method: r.Method, URL: url, Header: r.Header, Body: body, Query: r.URL.Query()}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		status, text, ok := res.Adapter.Handshake(res.Config, req)
		if !ok {
			apiError(w, http.StatusMethodNotAllowed, inbox.Invalid, "this channel's webhook takes POST")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
		return
	case http.MethodPost:
	default:
		apiError(w, http.StatusMethodNotAllowed, inbox.Invalid, "method not allowed")
		return
	}
	if err := res.Adapter.Verify(res.Config, req); err != nil {
		if in.m.Unverified != nil {
			in.m.Unverified(res.Channel.Kind)
		}
		in.log.Debug("webhook: unverified", "channel", channelID, "kind", res.Channel.Kind, "err", err)
		apiError(w, http.StatusUnauthorized, inbox.Unauthorized, "signature verification failed")
		return
	}
	entry := store.InboundEntry{
		WorkspaceID: res.Channel.WorkspaceID,
		ChannelID:   res.Channel.ID,
		ReceivedAt:  start.UTC(),
		Method:      r.Method,
		URL:         url,
		Header:      r.Header,
		Body:        body,
	}
	if err := entry.Prepare(); err != nil {
		in.log.Error("webhook: prepare the inbound entry", "channel", channelID, "err", err)
		apiError(w, http.StatusInternalServerError, inbox.Internal, "could not store the webhook; retry")
		return
	}
	if err := in.Append(r.Context(), entry); err != nil {
		in.log.Error("webhook: append to inbound log", "channel", channelID, "err", err)
		apiError(w, http.StatusServiceUnavailable, inbox.Internal, "could not store the webhook; retry")
		return
	}
	if in.m.Received != nil {
		in.m.Received(res.Channel.Kind)
	}
	ct, ack := res.Adapter.Ack()
	if ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(ack)
	if in.m.AckLatency != nil {
		in.m.AckLatency(time.Since(start))
	}
}

// Append durably appends one entry through the group committer and returns
// once the transaction holding it has committed (or failed). Without a
// running committer (Start not called) it appends directly.
func (in *Ingest) Append(ctx context.Context, e store.InboundEntry) error {
	if !in.started.Load() {
		return in.db.AppendInbound(ctx, []store.InboundEntry{e})
	}
	done := make(chan error, 1)
	in.ackMu.Lock()
	if err := in.ackClosed; err != nil {
		in.ackMu.Unlock()
		return err
	}
	in.waiting = append(in.waiting, appendReq{entry: e, done: done, at: time.Now()})
	n := len(in.waiting)
	in.ackMu.Unlock()
	if n == 1 {
		signal(in.ackSig)
	}
	if n == in.opt.BatchMax {
		signal(in.ackFull)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The entry may still commit; the provider will retry and the replay is a no-op.
		return ctx.Err()
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// ackWait is how long the oldest waiting append has waited (0: none waits).
func (in *Ingest) ackWait() time.Duration {
	in.ackMu.Lock()
	defer in.ackMu.Unlock()
	if len(in.waiting) == 0 {
		return 0
	}
	return time.Since(in.waiting[0].at)
}

// takeWaiting takes up to BatchMax waiting appends (in arrival order) into
// the transaction of the caller, which holds the write connection; it hands
// back their entries, whose ids the append assigns.
func (in *Ingest) takeWaiting() ([]appendReq, []store.InboundEntry) {
	in.ackMu.Lock()
	n := min(len(in.waiting), in.opt.BatchMax)
	batch := in.waiting[:n:n]
	if n == len(in.waiting) {
		in.waiting = nil
	} else {
		in.waiting = in.waiting[n:]
		signal(in.ackSig)
	}
	in.ackMu.Unlock()
	if n == 0 {
		return nil, nil
	}
	entries := make([]store.InboundEntry, n)
	for i, r := range batch {
		entries[i] = r.entry
	}
	return batch, entries
}

// acked answers appends taken into a transaction that committed.
func (in *Ingest) acked(batch []appendReq, entries []store.InboundEntry, byWorker bool) {
	if len(batch) == 0 {
		return
	}
	for _, r := range batch {
		r.done <- nil
	}
	if in.m.Committed != nil {
		in.m.Committed(len(batch), byWorker)
	}
	in.appended(entries)
}

// putBack returns appends taken into a transaction that failed (for another
// reason than theirs) to the front of the queue, for the committer.
func (in *Ingest) putBack(batch []appendReq) {
	if len(batch) == 0 {
		return
	}
	in.ackMu.Lock()
	if err := in.ackClosed; err != nil {
		in.ackMu.Unlock()
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	in.waiting = append(batch[:len(batch):len(batch)], in.waiting...)
	in.ackMu.Unlock()
	signal(in.ackSig)
}

// commitLoop is the group committer: when appends wait, it collects more for
// up to BatchWindow or BatchMax entries, then commits whatever waits when it
// holds the write connection in ONE transaction and answers every waiter.
func (in *Ingest) commitLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			in.closeAcks(fmt.Errorf("ingest stopping: %w", ctx.Err()))
			return
		case <-in.ackSig:
		}
		timer.Reset(in.opt.BatchWindow)
		select {
		case <-timer.C:
		case <-in.ackFull:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		var batch []appendReq
		// Commit even if ctx is ending: the waiters still expect an answer.
		entries, err := in.db.AppendInboundFrom(context.WithoutCancel(ctx), func() []store.InboundEntry {
			var entries []store.InboundEntry
			batch, entries = in.takeWaiting()
			return entries
		})
		if err != nil && len(entries) == 0 {
			// Nothing was taken (the transaction did not begin): the
			// waiters are still queued; try again shortly.
			signal(in.ackSig)
			time.Sleep(in.opt.BatchWindow)
			continue
		}
		if err != nil {
			// One bad entry must not fail its neighbours: retry them one by
			// one, with new ids (the ids minted in the failed transaction
			// are older than entries committed since: id order is commit
			// order).
			for i := range entries {
				entries[i].ID = ""
				batch[i].done <- in.db.AppendInbound(context.WithoutCancel(ctx), entries[i:i+1])
			}
			in.appended(entries)
			continue
		}
		in.acked(batch, entries, false)
	}
}

// closeAcks fails the waiting appends and any later one.
func (in *Ingest) closeAcks(err error) {
	in.ackMu.Lock()
	in.ackClosed = err
	batch := in.waiting
	in.waiting = nil
	in.ackMu.Unlock()
	for _, r := range batch {
		r.done <- err
	}
}
