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
	BatchSize  func(n int)                   // entries per group commit
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

	appends chan appendReq
	wake    chan struct{}
	stopped chan struct{} // closed when the committer has stopped

	// ackWaiting is set from the moment a group commit starts collecting
	// until it has committed: a worker transaction then ends soon.
	ackWaiting atomic.Bool

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
	groupMu sync.Mutex
	groups  groupLookups

	startOnce sync.Once
	started   atomic.Bool
	wg        sync.WaitGroup
}

type appendReq struct {
	entry store.InboundEntry
	done  chan error
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

		appendedSig: make(chan struct{}),
		answering:   make(chan struct{}, 8),
		groups:      groupLookups{tried: map[string]time.Time{}, want: map[string]map[string]bool{}, running: map[string]bool{}},
		appends:     make(chan appendReq, 4096),
		wake:        make(chan struct{}, 1),
		stopped:     make(chan struct{}),
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
	select {
	case in.appends <- appendReq{entry: e, done: done}:
	case <-in.stopped:
		return errors.New("ingest: stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-in.stopped:
		// Drained with an error, or committed just before stopping.
		select {
		case err := <-done:
			return err
		default:
			return errors.New("ingest: stopped")
		}
	case <-ctx.Done():
		// The entry may still commit; the provider will retry and the replay is a no-op.
		return ctx.Err()
	}
}

// commitLoop is the group committer: it takes the first waiting append,
// collects more for up to BatchWindow or BatchMax entries, commits them in ONE
// transaction and releases every waiter with the result.
func (in *Ingest) commitLoop(ctx context.Context) {
	batch := make([]appendReq, 0, in.opt.BatchMax)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			in.drainAppends(ctx.Err())
			return
		case r := <-in.appends:
			batch = append(batch, r)
		}
		in.ackWaiting.Store(true)
		timer.Reset(in.opt.BatchWindow)
	collect:
		for len(batch) < in.opt.BatchMax {
			select {
			case r := <-in.appends:
				batch = append(batch, r)
			case <-timer.C:
				break collect
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		entries := make([]store.InboundEntry, len(batch))
		for i, r := range batch {
			entries[i] = r.entry
		}
		// Commit even if ctx is ending: the waiters still expect an answer.
		err := in.db.AppendInbound(context.WithoutCancel(ctx), entries)
		in.ackWaiting.Store(false)
		if err != nil {
			// One bad entry must not fail its neighbours: retry them one by one.
			for i := range entries {
				batch[i].done <- in.db.AppendInbound(context.WithoutCancel(ctx), entries[i:i+1])
			}
		} else {
			for _, r := range batch {
				r.done <- nil
			}
		}
		if in.m.BatchSize != nil {
			in.m.BatchSize(len(batch))
		}
		in.appended(entries)
	}
}

func (in *Ingest) drainAppends(err error) {
	for {
		select {
		case r := <-in.appends:
			r.done <- fmt.Errorf("ingest stopping: %w", err)
		default:
			return
		}
	}
}
