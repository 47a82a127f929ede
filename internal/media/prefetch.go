package media

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/store"
)

// Provider files are fetched on their first open, but some providers' links
// expire (channel.ExpiringMedia): an attachment nobody opened in time would
// be lost. The prefetcher fetches those in the background, through the same
// single-flight fetch as an open (so the size caps, cache TTL and eviction
// apply), oldest first, and waits longer after each failure.

// PrefetchOptions configure a Prefetcher.
type PrefetchOptions struct {
	// Kinds are the channel kinds whose adapters implement
	// channel.ExpiringMedia; with none nothing is prefetched.
	Kinds       []string
	Window      time.Duration // how far back to look for uncached files (default 30 days)
	Concurrency int           // fetches at a time (default 4)
	MaxPerPass  int           // fetches per pass (default 200)
	RetryAfter  time.Duration // wait after a first failure, doubled per failure (default 5 min)
	MaxRetry    time.Duration // longest wait between attempts (default 6 h)
}

// Prefetcher fetches expiring provider files before they expire.
type Prefetcher struct {
	s *Service
	o PrefetchOptions

	mu     sync.Mutex
	failed map[string]prefetchFailure // attachment id → its last failures
}

type prefetchFailure struct {
	n    int       // consecutive failures
	at   time.Time // of the last one
	next time.Time // no attempt before
}

// prefetchPage is how many uncached attachments one query reads.
const prefetchPage = 500

// NewPrefetcher makes a Prefetcher on s.
func (s *Service) NewPrefetcher(o PrefetchOptions) *Prefetcher {
	if o.Window <= 0 {
		o.Window = 30 * 24 * time.Hour
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.MaxPerPass <= 0 {
		o.MaxPerPass = 200
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 5 * time.Minute
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = 6 * time.Hour
	}
	o.MaxRetry = max(o.MaxRetry, o.RetryAfter)
	return &Prefetcher{s: s, o: o, failed: map[string]prefetchFailure{}}
}

// Run makes one pass and logs its outcome (the server runs it periodically).
func (p *Prefetcher) Run(ctx context.Context) {
	fetched, failed, err := p.Pass(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		p.s.o.Logger.Warn("media: prefetch", "err", err)
	case fetched+failed > 0:
		p.s.o.Logger.Debug("media: prefetched expiring provider files", "fetched", fetched, "failed", failed)
	}
}

// Pass fetches the uncached files that will expire, oldest first, at most
// MaxPerPass of them, and reports how many it fetched and how many failed.
func (p *Prefetcher) Pass(ctx context.Context) (fetched, failed int, err error) {
	if len(p.o.Kinds) == 0 {
		return 0, 0, nil
	}
	due, err := p.due(ctx)
	if err != nil || len(due) == 0 {
		return 0, 0, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, p.o.Concurrency)
	for _, att := range due {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return fetched, failed, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			ferr := p.s.fetchOnce(ctx, att, false)
			if ferr != nil && ctx.Err() != nil {
				return // stopped, not failed
			}
			p.record(att, ferr)
			mu.Lock()
			defer mu.Unlock()
			if ferr == nil {
				fetched++
			} else {
				failed++
			}
		})
	}
	wg.Wait()
	return fetched, failed, nil
}

// due lists, oldest first, the uncached attachments of the window whose
// adapter says they expire and that have not expired yet, leaving out those
// waiting after a failure.
func (p *Prefetcher) due(ctx context.Context) ([]store.MediaAttachment, error) {
	now := p.s.o.Now()
	p.forget(now)
	expiring := map[string]channel.ExpiringMedia{} // channel id → its adapter (nil: none)
	var out []store.MediaAttachment
	cur := store.MediaCursor{CreatedAt: now.Add(-p.o.Window)}
	for len(out) < p.o.MaxPerPass {
		page, err := p.s.o.DB.UncachedMediaPage(ctx, p.o.Kinds, cur, prefetchPage)
		if err != nil {
			return nil, err
		}
		for _, u := range page {
			if len(out) == p.o.MaxPerPass {
				break
			}
			if p.waiting(u.ID, now) {
				continue
			}
			em, ok := expiring[u.ChannelID]
			if !ok {
				em = p.adapter(ctx, u.ChannelID)
				expiring[u.ChannelID] = em
			}
			if em == nil {
				continue
			}
			m := channel.Media{Kind: u.Kind, MimeType: u.MimeType, Filename: u.Filename, Size: u.Size, ProviderRef: u.ProviderRef,
				DurationMS: u.DurationMS, Width: u.Width, Height: u.Height}
			if d := em.MediaExpiresAfter(m); d > 0 && u.CreatedAt.Add(d).After(now) {
				out = append(out, u.MediaAttachment)
			}
		}
		if len(page) < prefetchPage {
			break
		}
		last := page[len(page)-1]
		cur = store.MediaCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return out, nil
}

// adapter returns the channel's adapter if its media expire, else nil.
func (p *Prefetcher) adapter(ctx context.Context, channelID string) channel.ExpiringMedia {
	ad, _, err := p.s.o.Adapter(ctx, channelID)
	if err != nil {
		if ctx.Err() == nil {
			p.s.o.Logger.Debug("media: prefetch: resolve channel", "channel", channelID, "err", err)
		}
		return nil
	}
	em, _ := ad.(channel.ExpiringMedia)
	return em
}

// record remembers a failed fetch (the next attempt waits longer each time)
// and forgets the failures of a fetched file.
func (p *Prefetcher) record(att store.MediaAttachment, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		delete(p.failed, att.ID)
		return
	}
	now := p.s.o.Now()
	f := p.failed[att.ID]
	f.n++
	wait := p.o.RetryAfter << min(f.n-1, 16)
	if wait <= 0 || wait > p.o.MaxRetry {
		wait = p.o.MaxRetry
	}
	f.at, f.next = now, now.Add(wait)
	p.failed[att.ID] = f
	p.s.o.Logger.Debug("media: prefetch failed", "attachment", att.ID, "channel", att.ChannelID, "failures", f.n, "retry_in", wait, "err", redactURL(err))
}

// waiting reports whether id failed recently and must not be tried yet.
func (p *Prefetcher) waiting(id string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.failed[id]
	return ok && now.Before(f.next)
}

// forget drops the failures of files that left the window (never listed again).
func (p *Prefetcher) forget(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, f := range p.failed {
		if now.Sub(f.at) > p.o.Window {
			delete(p.failed, id)
		}
	}
}

// redactURL is err's text without the URL of a failed request: provider
// media links are signed (Meta CDN, Wappi file_link) and must not reach logs.
func redactURL(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " <provider url>: " + ue.Err.Error()
	}
	return err.Error()
}
