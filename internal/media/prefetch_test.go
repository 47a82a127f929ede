package media

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/store"
)

// expiringAdapter's links expire a week after the message, except refs
// "keep-…"; refs "fail-…" cannot be fetched.
type expiringAdapter struct {
	mediaAdapter
	fails *int
}

func (expiringAdapter) MediaExpiresAfter(m channel.Media) time.Duration {
	if strings.HasPrefix(m.ProviderRef, "keep-") {
		return 0
	}
	return 7 * 24 * time.Hour
}

func (a expiringAdapter) FetchMedia(ctx context.Context, cfg channel.Config, ref string) (io.ReadCloser, string, error) {
	if strings.HasPrefix(ref, "fail-") {
		*a.fails++
		return nil, "", errors.New("provider answered 502")
	}
	return a.mediaAdapter.FetchMedia(ctx, cfg, ref)
}

type prefetchEnv struct {
	*mediaEnv
	plain inbox.Channel // a channel whose adapter's links do not expire
	fails int
}

func newPrefetchEnv(t *testing.T) *prefetchEnv {
	t.Helper()
	e := &prefetchEnv{mediaEnv: newMediaEnv(t, Options{})}
	e.now.Store(time.Now().Unix())
	var err error
	if e.plain, err = e.db.CreateChannel(context.Background(), e.ws, inbox.Channel{Kind: "plainmedia", Name: "P"}); err != nil {
		t.Fatal(err)
	}
	e.svc.o.Adapter = func(ctx context.Context, id string) (channel.Adapter, channel.Config, error) {
		base := mediaAdapter{base: e.prov.srv.URL}
		if id == e.plain.ID {
			return base, channel.Config{ChannelID: id}, nil
		}
		return expiringAdapter{mediaAdapter: base, fails: &e.fails}, channel.Config{ChannelID: id}, nil
	}
	return e
}

// attach stores an inbound message of ch with one provider file ref.
func (e *prefetchEnv) attach(t *testing.T, ch inbox.Channel, ref string) string {
	t.Helper()
	ctx := context.Background()
	_, err := e.db.ApplyInbound(ctx, store.InboundEntry{ID: "e-" + ref, ReceivedAt: time.Now()}, ch, []channel.Event{{Type: channel.EventMessage,
		ExternalID: "m-" + ref, ChatID: "c-" + ref, Direction: "inbound", Kind: inbox.KindImage, Sender: channel.Party{Identifier: "c-" + ref},
		Attachments: []channel.Media{{Kind: inbox.KindImage, MimeType: "image/jpeg", ProviderRef: ref}}}})
	if err != nil {
		t.Fatal(err)
	}
	page, err := e.db.UncachedMediaPage(ctx, nil, store.MediaCursor{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range page {
		if u.ProviderRef == ref {
			return u.ID
		}
	}
	t.Fatalf("attachment %s not found", ref)
	return ""
}

func (e *prefetchEnv) cached(t *testing.T, id string) bool {
	t.Helper()
	att, err := e.db.MediaAttachment(context.Background(), e.ws, id)
	if err != nil {
		t.Fatal(err)
	}
	return att.StorageKey != ""
}

// TestPrefetchExpiring: a file whose adapter says its link expires is fetched
// in the background without anyone opening it, and its first open is served
// from the cache; files whose links do not expire wait for their first open.
func TestPrefetchExpiring(t *testing.T) {
	ctx := context.Background()
	e := newPrefetchEnv(t)
	exp := e.attach(t, e.ch, "exp-1")
	keep := e.attach(t, e.ch, "keep-1")      // the adapter says this one does not expire
	plain := e.attach(t, e.plain, "plain-1") // the adapter has no expiring media
	pf := e.svc.NewPrefetcher(PrefetchOptions{Kinds: []string{"mediatest", "plainmedia"}})

	fetched, failed, err := pf.Pass(ctx)
	if err != nil || fetched != 1 || failed != 0 {
		t.Fatalf("pass: fetched %d failed %d err %v", fetched, failed, err)
	}
	if !e.cached(t, exp) || e.cached(t, keep) || e.cached(t, plain) {
		t.Fatalf("cached: expiring %v, not expiring %v, plain %v", e.cached(t, exp), e.cached(t, keep), e.cached(t, plain))
	}
	if got := e.prov.fetches.Load(); got != 1 {
		t.Fatalf("provider fetches = %d, want 1", got)
	}
	f, _, _, err := e.svc.Open(ctx, e.ws, exp)
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, f); string(b) != string(e.prov.body) || e.prov.fetches.Load() != 1 {
		t.Fatal("the first open must be served from the prefetched file")
	}
	if fetched, _, _ := pf.Pass(ctx); fetched != 0 || e.prov.fetches.Load() != 1 {
		t.Fatal("a second pass must fetch nothing")
	}
	if fetched, _, _ := e.svc.NewPrefetcher(PrefetchOptions{}).Pass(ctx); fetched != 0 {
		t.Fatal("no expiring kinds: nothing to prefetch")
	}
}

// TestPrefetchOrderExpiryAndRetry: the oldest files go first, an expired
// link is not tried, and a failed fetch waits before it is tried again.
func TestPrefetchOrderExpiryAndRetry(t *testing.T) {
	ctx := context.Background()
	e := newPrefetchEnv(t)
	first := e.attach(t, e.ch, "exp-1")
	bad := e.attach(t, e.ch, "fail-1")
	second := e.attach(t, e.ch, "exp-2")
	pf := e.svc.NewPrefetcher(PrefetchOptions{Kinds: []string{"mediatest"}, MaxPerPass: 1, RetryAfter: time.Minute})

	if fetched, _, _ := pf.Pass(ctx); fetched != 1 || !e.cached(t, first) || e.cached(t, second) {
		t.Fatal("the oldest file must be fetched first")
	}
	if _, failed, _ := pf.Pass(ctx); failed != 1 || e.fails != 1 {
		t.Fatalf("second pass: the failing file (failures %d)", e.fails)
	}
	if fetched, _, _ := pf.Pass(ctx); fetched != 1 || e.fails != 1 || !e.cached(t, second) {
		t.Fatalf("third pass: the failed file must wait, the next one goes (failures %d)", e.fails)
	}
	if pf.Pass(ctx); e.fails != 1 {
		t.Fatal("retried too soon")
	}
	e.now.Add(61)
	if pf.Pass(ctx); e.fails != 2 {
		t.Fatalf("after the wait it is tried again (failures %d)", e.fails)
	}
	e.now.Add(90)
	if pf.Pass(ctx); e.fails != 2 {
		t.Fatal("the wait doubles after each failure")
	}
	e.now.Add(8 * 24 * 3600) // the link has expired: no use trying
	if pf.Pass(ctx); e.fails != 2 || e.cached(t, bad) {
		t.Fatalf("an expired link was tried (failures %d)", e.fails)
	}
}
