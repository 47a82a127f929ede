package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
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
			pruneInbound(ctx, a)
			every(ctx, time.Hour, func(ctx context.Context) { pruneInbound(ctx, a) })
			return nil
		},
	)
	return nil
}

// Send checks the channel's rules and queues an outbound message with its
// outbox row in one transaction (httpapi.Sender).
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
	qr, state, err := qa.AuthorizationQR(ctx, res.Config)
	if err != nil {
		out.State, out.Detail = "error", "the provider did not answer: "+err.Error()
		return out, nil
	}
	out.State = state
	if state != "authorized" {
		out.QR = qr
	}
	status := map[string]string{"authorized": "active", "pending": "pending"}[state]
	if status == "" {
		status = "disconnected"
	}
	if status != ch.Status {
		if _, err := p.db.UpdateChannel(ctx, ch.WorkspaceID, ch.ID, inbox.ChannelPatch{Status: inbox.Some(status), StatusDetail: inbox.Some("authorization: " + state)}); err != nil {
			return out, err
		}
	}
	return out, nil
}

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
