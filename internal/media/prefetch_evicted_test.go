package media

import (
	"context"
	"testing"
)

// The janitor evicts cached provider files over CacheMaxBytes; the
// prefetcher must not fetch them again (only someone opening one does), or
// while the expiring media of their lifetime exceed the cap every janitor
// run would be followed by re-downloads of everything it evicted.
func TestPrefetchLeavesEvictedFiles(t *testing.T) {
	ctx := context.Background()
	e := newPrefetchEnv(t)
	e.attach(t, e.ch, "exp-a")
	e.attach(t, e.ch, "exp-b")
	e.svc.o.CacheMaxBytes = int64(len(e.prov.body)) + 100 // room for one file
	pf := e.svc.NewPrefetcher(PrefetchOptions{Kinds: []string{"mediatest"}})
	for cycle := 0; cycle < 3; cycle++ {
		if _, _, err := pf.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err := e.svc.Clean(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("cycle %d: provider fetches so far %d, evicted %d", cycle, e.prov.fetches.Load(), rep.Evicted)
	}
	if got := e.prov.fetches.Load(); got > 2 {
		t.Errorf("2 files, never opened, were downloaded %d times: the prefetcher re-fetches what the janitor evicts", got)
	}
}
