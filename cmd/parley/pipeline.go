package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/ingest"
	"github.com/parleyhq/parley/internal/media"
	"github.com/parleyhq/parley/internal/outbound"
	"github.com/parleyhq/parley/internal/store"
)

// pipeline is the messaging pipeline of one node: webhooks → inbound log →
// ingest workers, and sends → outbox → outbound workers, plus media.
type pipeline struct {
	db       *store.DB
	channels *ingest.Channels
	ingest   *ingest.Ingest
	media    *media.Service
	outbound *outbound.Worker
	now      func() time.Time
}

// newPipeline builds the pipeline on an open store (serve and the repair commands share it).
func newPipeline(a *app) *pipeline {
	client := &http.Client{Timeout: 60 * time.Second}
	chans := &ingest.Channels{Store: a.store, Registry: a.channels, OpenSecrets: a.secrets.OpenMap, PublicURL: a.cfg.PublicURL, HTTPClient: client}
	m := a.metrics
	received := m.Counter("webhooks_received_total", "verified webhooks logged", "kind")
	unverified := m.Counter("webhooks_unverified_total", "webhooks refused: bad signature or secret", "kind")
	processed := m.Counter("inbound_events_total", "normalized inbound events applied", "kind")
	failed := m.Counter("inbound_failures_total", "inbound entries that failed to apply (retried)", "kind")
	ackCommits := m.Counter("webhook_ack_commits_total", "transactions that committed verified webhooks before their acknowledgement: by the group committer, or with an ingest worker's batch (SQLite)", "by")
	sent := m.Counter("outbound_sent_total", "messages delivered to providers", "kind")
	sendFailed := m.Counter("outbound_failed_total", "messages that failed for good", "kind")
	p := &pipeline{db: a.store, channels: chans, now: time.Now}
	p.ingest = ingest.New(ingest.Options{DB: a.store, Channels: chans, Logger: a.log, MaxBodyBytes: a.cfg.MaxBodyBytes,
		Metrics: ingest.Metrics{
			Received:   func(kind string) { received.WithLabelValues(kind).Inc() },
			Unverified: func(kind string) { unverified.WithLabelValues(kind).Inc() },
			Processed:  func(kind string, n int) { processed.WithLabelValues(kind).Add(float64(n)) },
			Failed:     func(kind string, _ error) { failed.WithLabelValues(kind).Inc() },
			Committed: func(_ int, byWorker bool) {
				ackCommits.WithLabelValues(map[bool]string{false: "group", true: "worker"}[byWorker]).Inc()
			},
		}})
	p.media = media.New(media.Options{DB: a.store, Storage: media.LocalStorage{Dir: filepath.Join(a.cfg.DataDir, "media")},
		Adapter: chans.Adapter, SecretKey: a.key, PublicURL: a.cfg.PublicURL, Logger: a.log, MaxUploadBytes: a.cfg.MaxUploadBytes})
	p.outbound = outbound.New(outbound.Options{DB: a.store, Adapter: chans.Adapter, Media: p.media, Logger: a.log,
		Sent:   func(kind string, _ int) { sent.WithLabelValues(kind).Inc() },
		Failed: func(kind string, _ string) { sendFailed.WithLabelValues(kind).Inc() },
	})
	return p
}

// wirePipeline mounts the pipeline's routes and starts its workers with the server.
func wirePipeline(_ context.Context, a *app) error {
	p := newPipeline(a)
	a.OnCommit(func(cs []inbox.Change) { // drop cached channel configs as soon as a channel changes
		for _, c := range cs {
			if c.Entity == inbox.EntityChannel {
				p.channels.Invalidate(c.ID)
			}
		}
	})
	a.deps.Sender = p
	a.deps.Routes = append(a.deps.Routes, httpapi.PipelineRoutes(httpapi.Pipeline{
		Store: a.store, Webhooks: p.ingest, Media: p.media, MaxUpload: a.cfg.MaxUploadBytes,
		Retry: func(ctx context.Context, wsID, id string) (inbox.Message, error) {
			m, err := a.store.RetryMessage(ctx, wsID, id)
			if err == nil {
				p.outbound.Notify()
			}
			return m, err
		},
		Authorization: p.authorization,
	})...)
	a.jobs = append(a.jobs,
		func(ctx context.Context) error { p.ingest.Start(ctx); <-ctx.Done(); p.ingest.Wait(); return nil },
		func(ctx context.Context) error { p.outbound.Run(ctx); return nil },
		func(ctx context.Context) error { every(ctx, time.Hour, p.media.Janitor); return nil },
		func(ctx context.Context) error {
			every(ctx, mediaPrefetchEvery, p.media.NewPrefetcher(media.PrefetchOptions{Kinds: expiringKinds(a.channels)}).Run)
			return nil
		},
		func(ctx context.Context) error {
			every(ctx, authCheckEvery, func(ctx context.Context) { p.checkAuthorizations(ctx, a.log) })
			return nil
		},
		func(ctx context.Context) error {
			pruneInbound(ctx, a)
			every(ctx, time.Hour, func(ctx context.Context) { pruneInbound(ctx, a) })
			return nil
		},
	)
	return nil
}

// Send checks the channel's rules and queues an outbound message with its
// outbox row in one transaction (httpapi.Sender).
// Notify wakes the outbound workers (an operator's reaction was queued).
func (p *pipeline) Notify() { p.outbound.Notify() }

func (p *pipeline) Send(ctx context.Context, wsID string, pr *auth.Principal, conv inbox.Conversation, in httpapi.SendRequest) (inbox.Message, error) {
	ad, cfg, err := p.channels.Adapter(ctx, conv.ChannelID)
	if err != nil {
		if inbox.IsCode(err, inbox.NotFound) {
			return inbox.Message{}, inbox.Errorf(inbox.Invalid, "this conversation's channel no longer exists: reply from another channel")
		}
		return inbox.Message{}, err
	}
	draft := outbound.Draft{Text: in.Text, Template: in.Template != nil}
	kind := inbox.KindText
	for i, id := range in.AttachmentIDs {
		att, err := p.db.MediaAttachment(ctx, wsID, id)
		if err != nil {
			if inbox.IsCode(err, inbox.NotFound) {
				return inbox.Message{}, inbox.FieldError("unknown attachment", map[string]string{"attachment_ids": "no upload " + id})
			}
			return inbox.Message{}, err
		}
		if att.MessageID != "" {
			return inbox.Message{}, inbox.FieldError("attachment already sent", map[string]string{"attachment_ids": "upload " + id + " belongs to another message: upload the file again"})
		}
		draft.Attachments = append(draft.Attachments, outbound.DraftMedia{Kind: att.Kind, MimeType: att.MimeType, Filename: att.Filename, Size: att.Size})
		if i == 0 {
			kind = att.Kind
		}
	}
	state := channel.ConversationState{LastInboundAt: conv.LastInboundAt, IsGroup: conv.IsGroup, Now: p.now()}
	rules := ad.Rules(cfg)
	if err := outbound.CheckRules(rules, state, draft); err != nil { // before queueing: a clear 400
		return inbox.Message{}, err
	}
	nm := inbox.NewMessage{ConversationID: conv.ID, Sender: pr.Actor(), Direction: "outbound", Kind: kind, Text: in.Text,
		AttachmentIDs: in.AttachmentIDs, ReplyToID: in.ReplyToID, Status: inbox.MsgQueued, Outbox: true}
	if rules.Segments != nil && in.Text != "" { // report what the SMS will cost
		enc, n := rules.Segments(in.Text)
		if nm.Content, err = json.Marshal(map[string]any{"sms": map[string]any{"encoding": enc, "segments": n}}); err != nil {
			return inbox.Message{}, err
		}
	}
	if in.Template != nil {
		nm.Kind = inbox.KindTemplate
		if nm.Content, err = json.Marshal(in.Template); err != nil {
			return inbox.Message{}, err
		}
	}
	m, err := p.db.CreateMessage(ctx, wsID, nm)
	if err != nil {
		return inbox.Message{}, err
	}
	p.outbound.Notify()
	return m, nil
}

// QR-authorized channels (channel.QRAuthorizer) can lose their authorization
// on the phone's side (logged out, banned) without any webhook reaching us:
// their state is also asked from the provider on GET …/authorization and by
// a background check every authCheckEvery (variables: tests shorten them).
var (
	authCheckEvery       = time.Minute
	authCheckTimeout     = 15 * time.Second // per provider call
	authCheckConcurrency = 4
)

// authorization reports a QR-authorized channel's QR and state, asking the
// provider, and records a changed state on the channel (status and health).
func (p *pipeline) authorization(ctx context.Context, ch inbox.Channel) (httpapi.Authorization, error) {
	out := httpapi.Authorization{ChannelID: ch.ID, State: ch.Status, CheckedAt: p.now().UTC()}
	res, err := p.channels.Resolve(ctx, ch.ID)
	if err != nil {
		return out, err
	}
	qa, ok := res.Adapter.(channel.QRAuthorizer)
	if !ok {
		return out, nil
	}
	out.Required = true
	state, serr := p.profileStatus(ctx, res.Config, qa)
	detail := "status check: " + state
	if serr == nil && state == "authorized" {
		out.State = state
		return out, p.recordAuth(ctx, ch, state, detail)
	}
	qctx, cancel := context.WithTimeout(ctx, authCheckTimeout)
	qr, qstate, qerr := qa.AuthorizationQR(qctx, res.Config)
	cancel()
	switch {
	case qerr == nil && (qstate != "pending" || serr != nil):
		// Logged in since the status check, waiting for a password (2fa), or
		// the status is unknown: the QR's state is the newest.
		state, detail = qstate, "authorization: "+qstate
	case qerr == nil: // a QR to scan: the profile is still unauthorized
	case serr == nil:
		out.Detail = "no QR code: " + qerr.Error()
	default:
		out.State, out.Detail = "error", "the provider did not answer: "+serr.Error()
		return out, nil
	}
	out.State = state
	if state != "authorized" {
		out.QR = qr
	}
	return out, p.recordAuth(ctx, ch, state, detail)
}

// profileStatus asks the provider for a profile's authorization state.
func (p *pipeline) profileStatus(ctx context.Context, cfg channel.Config, qa channel.QRAuthorizer) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, authCheckTimeout)
	defer cancel()
	return qa.ProfileStatus(ctx, cfg)
}

// authStatus is the channel status an authorization state leads to, as the
// store applies authorization events ("" for a state a check must not
// apply: an answer it does not understand leaves the channel as it is).
func authStatus(state string) string {
	switch state {
	case "authorized":
		return "active"
	case "pending", "2fa":
		return "pending"
	case "unauthorized":
		return "disconnected"
	}
	return ""
}

// recordAuth applies a provider-reported authorization state to channel ch
// (as read from the store) the way an authorization webhook is applied: its
// status and health change and clients are told. An unchanged status writes nothing.
func (p *pipeline) recordAuth(ctx context.Context, ch inbox.Channel, state, detail string) error {
	status := authStatus(state)
	if status == "" || status == ch.Status {
		return nil
	}
	if state == "2fa" { // Telegram waits for the cloud password: still authorizing
		state = "pending"
	}
	now := p.now()
	ev := channel.Event{Type: channel.EventAuth, AuthState: state, AuthDetail: detail, Timestamp: now}
	entry := store.InboundEntry{WorkspaceID: ch.WorkspaceID, ChannelID: ch.ID, ReceivedAt: now}
	if _, err := p.db.ApplyInbound(ctx, entry, ch, []channel.Event{ev}); err != nil {
		return err
	}
	p.channels.Invalidate(ch.ID)
	return nil
}

// kindsWith lists the registered kinds whose adapters have a capability.
func kindsWith(r *channel.Registry, has func(channel.Adapter) bool) []string {
	var kinds []string
	for _, k := range r.Kinds() {
		if ad, ok := r.Get(k); ok && has(ad) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// qrKinds are the channel kinds whose adapters are QR-authorized.
func qrKinds(r *channel.Registry) []string {
	return kindsWith(r, func(ad channel.Adapter) bool { _, ok := ad.(channel.QRAuthorizer); return ok })
}

// expiringKinds are the channel kinds whose adapters' media links expire.
func expiringKinds(r *channel.Registry) []string {
	return kindsWith(r, func(ad channel.Adapter) bool { _, ok := ad.(channel.ExpiringMedia); return ok })
}

// checkAuthorizations asks the provider for the state of every QR-authorized
// channel, a few at a time, and records the changed ones (the periodic job).
func (p *pipeline) checkAuthorizations(ctx context.Context, log *slog.Logger) {
	chans, err := p.db.ChannelsOfKinds(ctx, qrKinds(p.channels.Registry))
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("authorization check: list channels", "err", err)
		}
		return
	}
	sem := make(chan struct{}, authCheckConcurrency)
	var wg sync.WaitGroup
	for _, ch := range chans {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			p.checkAuthorization(ctx, log, ch)
		})
	}
	wg.Wait()
}

// checkAuthorization asks the provider for one channel's state and records it.
// Provider failures are only logged at debug (the next check retries; the
// errors carry no token: it travels in a header).
func (p *pipeline) checkAuthorization(ctx context.Context, log *slog.Logger, ch inbox.Channel) {
	res, err := p.channels.Resolve(ctx, ch.ID)
	if err != nil {
		log.Debug("authorization check: resolve channel", "channel", ch.ID, "err", err)
		return
	}
	qa, ok := res.Adapter.(channel.QRAuthorizer)
	if !ok {
		return
	}
	state, err := p.profileStatus(ctx, res.Config, qa)
	if err != nil {
		if ctx.Err() == nil {
			log.Debug("authorization check: provider", "channel", ch.ID, "kind", ch.Kind, "err", err)
		}
		return
	}
	if err := p.recordAuth(ctx, ch, state, "status check: "+state); err != nil && ctx.Err() == nil {
		log.Warn("authorization check: record state", "channel", ch.ID, "state", state, "err", err)
	}
}

// mediaPrefetchEvery is how often provider files whose links expire are
// looked for and fetched (media.Prefetcher).
const mediaPrefetchEvery = 30 * time.Second

// pruneInbound deletes the applied webhooks older than the retention
// (failed and pending ones are kept; no retention: nothing is deleted).
func pruneInbound(ctx context.Context, a *app) {
	if a.cfg.InboundRetention <= 0 {
		return
	}
	n, err := a.store.PruneInbound(ctx, time.Now().Add(-a.cfg.InboundRetention))
	switch {
	case err != nil && ctx.Err() == nil:
		a.log.Warn("prune inbound log", "err", err)
	case n > 0:
		a.log.Info("pruned inbound log", "entries", n, "retention", a.cfg.InboundRetention)
	}
}
