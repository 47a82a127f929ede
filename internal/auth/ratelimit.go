package auth

import (
	"sync"
	"time"
)

// Limiter counts failures per key in a sliding window. A key with Max
// failures inside Window is blocked until the oldest one leaves the window.
type Limiter struct {
	Max    int
	Window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time
	calls    int
}

// NewLimiter returns a limiter; now may be nil (time.Now).
func NewLimiter(max int, window time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{Max: max, Window: window, now: now, failures: map[string][]time.Time{}}
}

// Blocked reports whether any of keys is blocked and for how long.
func (l *Limiter) Blocked(keys ...string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, k := range keys {
		ts := l.prune(k, now)
		if len(ts) >= l.Max {
			if w := ts[len(ts)-l.Max].Add(l.Window).Sub(now); w > wait {
				wait = w
			}
		}
	}
	if wait > 0 {
		return wait, true
	}
	return 0, false
}

// Fail records one failure for each key.
func (l *Limiter) Fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range keys {
		l.failures[k] = append(l.prune(k, now), now)
	}
	l.calls++
	if l.calls%1024 == 0 { // bound memory: drop keys whose window passed
		for k := range l.failures {
			l.prune(k, now)
		}
	}
}

// Reset forgets the failures of key (after a successful login).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

func (l *Limiter) prune(k string, now time.Time) []time.Time {
	ts := l.failures[k]
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-l.Window)) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.failures, k)
		return nil
	}
	if len(ts) > l.Max { // only the newest Max matter
		ts = ts[len(ts)-l.Max:]
	}
	l.failures[k] = ts
	return ts
}
