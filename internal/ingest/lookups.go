package ingest

import (
	"sync"
	"time"
)

// lookupQueue drives background lookups of what webhooks do not carry
// (group titles, contact profiles): each key of a channel is looked up at
// most once per every, new keys are queued per channel, and one runner per
// channel drains its queue.
type lookupQueue struct {
	every time.Duration
	max   int // remembered lookups before old ones are forgotten

	mu      sync.Mutex
	tried   map[string]time.Time       // channel + "\x00" + key → when looked up
	want    map[string]map[string]bool // channel → keys to look up
	running map[string]bool            // channel → a runner runs
}

func newLookupQueue(every time.Duration, max int) *lookupQueue {
	return &lookupQueue{every: every, max: max,
		tried: map[string]time.Time{}, want: map[string]map[string]bool{}, running: map[string]bool{}}
}

// add queues the keys of a channel not looked up within every. It reports
// whether the caller must start the channel's runner (none runs yet).
func (q *lookupQueue) add(ch string, keys []string) bool {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	queued := false
	for _, k := range keys {
		key := ch + "\x00" + k
		if at, ok := q.tried[key]; ok && now.Sub(at) < q.every {
			continue
		}
		if len(q.tried) >= q.max {
			for tk, at := range q.tried {
				if now.Sub(at) >= q.every {
					delete(q.tried, tk)
				}
			}
			if len(q.tried) >= q.max {
				// All recent: forgetting only costs a lookup again.
				clear(q.tried)
			}
		}
		q.tried[key] = now
		if q.want[ch] == nil {
			q.want[ch] = map[string]bool{}
		}
		q.want[ch][k] = true
		queued = true
	}
	if !queued || q.running[ch] {
		return false
	}
	q.running[ch] = true
	return true
}

// next takes the channel's queued keys. None left (or stop): the runner
// ends, and the next add starts another.
func (q *lookupQueue) next(ch string, stop bool) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	want := q.want[ch]
	delete(q.want, ch)
	if len(want) == 0 || stop {
		q.running[ch] = false
		return nil
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	return keys
}

// retrySooner lets a key whose lookup failed be looked up again after
// retry rather than after every.
func (q *lookupQueue) retrySooner(ch, key string, retry time.Duration) {
	q.mu.Lock()
	q.tried[ch+"\x00"+key] = time.Now().Add(retry - q.every)
	q.mu.Unlock()
}
