package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/store"
)

// AdapterFunc resolves a channel to its adapter and config (ingest.Channels.Adapter).
type AdapterFunc func(ctx context.Context, channelID string) (channel.Adapter, channel.Config, error)

// Media gives the worker what it needs to send files: a conversion to the
// channel's required format (WebM voice → Ogg/Opus), a signed URL providers
// can fetch, and the bytes for providers that want an upload.
type Media interface {
	ConvertForSend(ctx context.Context, wsID string, att inbox.Attachment, wantMime string) (inbox.Attachment, error)
	ShareURL(att inbox.Attachment, ttl time.Duration) (url string, expires time.Time)
	OpenForSend(ctx context.Context, wsID string, att inbox.Attachment) (io.ReadCloser, error)
}

// Options configure a Worker.
type Options struct {
	DB          *store.DB
	Adapter     AdapterFunc
	Media       Media // may be nil when no channel sends files
	Logger      *slog.Logger
	Concurrency int           // parallel sends (default 4)
	Lease       time.Duration // an attempt's lease (default 2 min: longer than any send timeout)
	SendTimeout time.Duration // per provider call (default 60s)
	Poll        time.Duration // fallback poll (default 1s; due retries are found by it)
	MaxAttempts int           // attempts before a retryable error fails the message (default 8)
	Backoff     Backoff
	// Sent/Failed are optional metric callbacks.
	Sent   func(kind string, attempts int)
	Failed func(kind string, reason string)
}

// Worker delivers queued messages.
type Worker struct {
	o    Options
	wake chan struct{}
	wg   sync.WaitGroup
}

// New makes a Worker.
func New(o Options) *Worker {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 60 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Backoff.Base == 0 {
		o.Backoff = DefaultBackoff()
	}
	return &Worker{o: o, wake: make(chan struct{}, 1)}
}

// Notify wakes the worker (call after each enqueue).
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for in-flight sends.
func (w *Worker) Run(ctx context.Context) {
	sem := make(chan struct{}, w.o.Concurrency)
	t := time.NewTicker(w.o.Poll)
	defer t.Stop()
	defer w.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-t.C:
		}
		for ctx.Err() == nil {
			free := w.o.Concurrency - len(sem)
			if free <= 0 {
				break
			}
			items, uncertain, err := w.o.DB.ClaimOutbox(ctx, w.o.Lease, free)
			for _, id := range uncertain {
				w.o.Logger.Warn("outbound: interrupted send marked uncertain", "message", id)
			}
			if err != nil {
				if ctx.Err() == nil {
					w.o.Logger.Error("outbound: claim", "err", err)
				}
				break
			}
			for _, it := range items {
				sem <- struct{}{}
				w.wg.Add(1)
				go func(it store.OutboxItem) {
					defer func() { <-sem; w.wg.Done(); w.Notify() }()
					w.deliver(ctx, it)
				}(it)
			}
			if len(items) < free {
				break
			}
		}
	}
}

// deliver makes one attempt and records its outcome. The attempt is already
// recorded as in flight by ClaimOutbox; the message id is the idempotency key.
func (w *Worker) deliver(ctx context.Context, it store.OutboxItem) {
	// Recording must survive shutdown: the attempt happened.
	rec := context.WithoutCancel(ctx)
	ad, cfg, err := w.o.Adapter(ctx, it.ChannelID)
	if err != nil {
		w.fail(rec, it, "", "the channel is not available: "+inbox.ErrorMessage(err))
		return
	}
	out, err := w.build(ctx, ad.Rules(cfg), it)
	if err != nil {
		w.fail(rec, it, ad.Kind(), err.Error())
		return
	}
	sctx, cancel := context.WithTimeout(ctx, w.o.SendTimeout)
	res, err := ad.Send(sctx, cfg, out)
	cancel()
	ids := res.ExternalIDs
	if len(ids) == 0 && res.ExternalID != "" {
		ids = []string{res.ExternalID}
	}
	if it.Reaction != nil {
		ids = nil // the reaction's own provider id, if any, names no message of ours
	}
	if err == nil {
		if err := w.o.DB.MarkOutboxSent(rec, it, ids); err != nil {
			w.o.Logger.Error("outbound: record sent", "message", it.MessageID, "job", it.ID, "err", err)
		}
		if w.o.Sent != nil && it.Reaction == nil { // the metrics count messages
			w.o.Sent(ad.Kind(), it.Attempts)
		}
		return
	}
	reason := err.Error()
	var se *channel.SendError
	var retryAfter time.Duration
	if errors.As(err, &se) {
		reason = se.Reason
		if reason == "" {
			reason = se.Error()
		}
		retryAfter = se.RetryAfter
	}
	if channel.IsRetryable(err) && it.Attempts < w.o.MaxAttempts {
		next := time.Now().Add(w.o.Backoff.Delay(it.Attempts, retryAfter, rand.Float64()))
		w.o.Logger.Info("outbound: send failed, will retry", "message", it.MessageID, "job", it.ID, "attempt", it.Attempts, "at", next, "err", err)
		if err := w.o.DB.RetryOutboxLater(rec, it, reason, next); err != nil {
			w.o.Logger.Error("outbound: schedule retry", "message", it.MessageID, "err", err)
		}
		return
	}
	// Parts that went out before the failure (a "partial" error, never
	// retried) keep their ids: their statuses and echoes must find the message.
	w.fail(rec, it, ad.Kind(), reason, ids...)
}

// fail gives the item up; sent are the provider ids of the parts of the
// message that went out all the same.
func (w *Worker) fail(ctx context.Context, it store.OutboxItem, kind, reason string, sent ...string) {
	if it.Reaction != nil {
		// Nothing on the message shows this failure (the reaction stays
		// stored here): the log, the outbox row and the channel's health do.
		w.o.Logger.Warn("outbound: reaction not delivered", "message", it.MessageID, "job", it.ID, "channel", it.ChannelID,
			"kind", kind, "attempts", it.Attempts, "reason", reason)
	} else {
		w.o.Logger.Info("outbound: send failed", "message", it.MessageID, "attempts", it.Attempts, "reason", reason)
	}
	if err := w.o.DB.FailOutboxPartly(ctx, it, sent, reason); err != nil {
		w.o.Logger.Error("outbound: record failure", "message", it.MessageID, "job", it.ID, "err", err)
	}
	if w.o.Failed != nil && it.Reaction == nil {
		w.o.Failed(kind, reason)
	}
}

// build turns an outbox item into the adapter's Outgoing.
func (w *Worker) build(ctx context.Context, rules channel.Rules, it store.OutboxItem) (channel.Outgoing, error) {
	if it.Reaction != nil {
		return buildReaction(it), nil
	}
	out := channel.Outgoing{
		MessageID: it.MessageID,
		To:        it.To,
		ChatID:    it.ChatID,
		IsGroup:   it.IsGroup,
		Text:      it.Text,
		ReplyToID: it.ReplyToExternalID,
		HumanAgent: NeedsHumanAgent(rules, channel.ConversationState{
			LastInboundAt: it.LastInboundAt, IsGroup: it.IsGroup, Now: time.Now(),
		}),
	}
	if it.Kind == inbox.KindTemplate && len(it.Content) > 0 {
		var tpl channel.Template
		if err := json.Unmarshal(it.Content, &tpl); err == nil && tpl.Name != "" {
			out.Template = &tpl
		}
	}
	for _, a := range it.Attachments {
		if w.o.Media == nil {
			return out, errors.New("attachments cannot be sent: media storage is not configured")
		}
		if a.Kind == inbox.KindVoice && rules.VoiceMime != "" && !sameBaseMime(a.MimeType, rules.VoiceMime) {
			conv, err := w.o.Media.ConvertForSend(ctx, it.WorkspaceID, a, rules.VoiceMime)
			if err != nil {
				return out, err
			}
			a = conv
		}
		m := channel.OutMedia{Kind: a.Kind, MimeType: a.MimeType, Filename: a.Filename, Size: a.Size}
		m.URL, _ = w.o.Media.ShareURL(a, time.Hour)
		wsID, att := it.WorkspaceID, a
		m.Open = func() (io.ReadCloser, error) { return w.o.Media.OpenForSend(ctx, wsID, att) }
		out.Attachments = append(out.Attachments, m)
	}
	return out, nil
}

// buildReaction is a reaction job's Outgoing: only the reaction, to the
// conversation's contact or chat. Its idempotency key is the job's id (the
// message's id names the message reacted to, sent long before).
func buildReaction(it store.OutboxItem) channel.Outgoing {
	r := *it.Reaction
	return channel.Outgoing{MessageID: it.ID, To: it.To, ChatID: it.ChatID, IsGroup: it.IsGroup, Reaction: &r}
}

func baseMime(m string) string {
	for i := 0; i < len(m); i++ {
		if m[i] == ';' || m[i] == ' ' {
			return m[:i]
		}
	}
	return m
}

func sameBaseMime(a, b string) bool { return baseMime(a) == baseMime(b) }

// Backoff is the retry schedule: Base doubled per attempt, capped at Max,
// with jitter spreading each delay over [d*(1-Jitter), d]. A provider's
// Retry-After wins when it is longer (capped at MaxRetryAfter).
type Backoff struct {
	Base          time.Duration
	Max           time.Duration
	Jitter        float64 // 0..1
	MaxRetryAfter time.Duration
}

// DefaultBackoff is 2s, 4s, 8s … up to 10 minutes, up to half of it taken
// off as jitter; a Retry-After is honoured up to 1 hour.
func DefaultBackoff() Backoff {
	return Backoff{Base: 2 * time.Second, Max: 10 * time.Minute, Jitter: 0.5, MaxRetryAfter: time.Hour}
}

// Delay is the wait after attempt number attempt (1-based) failed. r is a
// uniform random number in [0,1).
func (b Backoff) Delay(attempt int, retryAfter time.Duration, r float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := b.Max
	if attempt-1 < 40 {
		if x := b.Base << (attempt - 1); x > 0 && x < b.Max {
			d = x
		}
	}
	d -= time.Duration(float64(d) * b.Jitter * r)
	if retryAfter > 0 {
		if b.MaxRetryAfter > 0 && retryAfter > b.MaxRetryAfter {
			retryAfter = b.MaxRetryAfter
		}
		if retryAfter > d {
			d = retryAfter
		}
	}
	return d
}
