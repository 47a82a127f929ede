package realtime

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

// Bus carries committed changes and ephemeral signals between the hubs of
// every node (and, in the embedded deployment, inside one process). Delivery
// is at most once: a lost message is repaired by the hub from the change log,
// so a Bus never needs to persist anything.
type Bus interface {
	// Publish sends data to every subscriber of subject. It must not block
	// for long: the store calls it right after a commit.
	Publish(ctx context.Context, subject string, data []byte) error
	// Subscribe calls fn for every message on subject (NATS wildcards "*"
	// and ">" are supported). Messages of one subscription are delivered in
	// order, one at a time. The subscription is active when Subscribe
	// returns: a message published after that is delivered.
	Subscribe(subject string, fn func(data []byte)) (unsubscribe func(), err error)
	// Close releases the bus; later calls fail.
	Close() error
}

// ErrBusClosed is returned by a closed bus.
var ErrBusClosed = errors.New("realtime: bus closed")

// Subject names used on the bus.
const (
	subjectChangesPrefix = "parley.changes."
	subjectSignalsPrefix = "parley.signals."
	subjectNodes         = "parley.nodes"
)

// ChangesSubject is the subject of the committed changes of workspace wsID.
func ChangesSubject(wsID string) string { return subjectChangesPrefix + wsID }

// SignalsSubject is the subject of the ephemeral signals of workspace wsID.
func SignalsSubject(wsID string) string { return subjectSignalsPrefix + wsID }

// validToken reports whether s can be one token of a subject (workspace ids
// are UUIDs; anything with separators or wildcards is refused).
func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	return !strings.ContainsAny(s, ".*> \t\r\n")
}

// subjectMatch reports whether subject matches pattern with NATS semantics:
// "*" matches exactly one token, a final ">" matches one or more tokens.
func subjectMatch(pattern, subject string) bool {
	pt := strings.Split(pattern, ".")
	st := strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" && i == len(pt)-1 {
			return len(st) > i
		}
		if i >= len(st) {
			return false
		}
		if p != "*" && p != st[i] {
			return false
		}
	}
	return len(pt) == len(st)
}

// MemoryBus is the in-process Bus of the embedded deployment. Each
// subscription has its own bounded queue and goroutine, so a slow subscriber
// never blocks a publisher; a message that does not fit is dropped and
// counted (the hub repairs the gap from the change log).
type MemoryBus struct {
	log       *slog.Logger
	queueSize int

	mu      sync.RWMutex
	closed  bool
	subs    map[*memSub]struct{}
	dropped atomic.Int64
}

type memSub struct {
	pattern string
	fn      func([]byte)
	ch      chan []byte
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// NewMemoryBus returns an in-process bus whose subscriptions queue up to
// queueSize messages (default 4096).
func NewMemoryBus(logger *slog.Logger, queueSize int) *MemoryBus {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if queueSize <= 0 {
		queueSize = 4096
	}
	return &MemoryBus{log: logger, queueSize: queueSize, subs: map[*memSub]struct{}{}}
}

// Publish implements Bus.
func (b *MemoryBus) Publish(_ context.Context, subject string, data []byte) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrBusClosed
	}
	var cp []byte
	for s := range b.subs {
		if !subjectMatch(s.pattern, subject) {
			continue
		}
		if cp == nil {
			cp = append([]byte(nil), data...)
		}
		select {
		case s.ch <- cp:
		case <-s.done:
		default:
			b.dropped.Add(1)
			b.log.Warn("realtime: memory bus subscriber full, message dropped", "subject", subject)
		}
	}
	return nil
}

// Dropped returns how many messages were dropped because a subscriber was full.
func (b *MemoryBus) Dropped() int64 {
	return b.dropped.Load()
}

// Subscribe implements Bus.
func (b *MemoryBus) Subscribe(subject string, fn func(data []byte)) (func(), error) {
	s := &memSub{pattern: subject, fn: fn, ch: make(chan []byte, b.queueSize), done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrBusClosed
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.done:
				return
			case m := <-s.ch:
				s.fn(m)
			}
		}
	}()
	return func() { b.unsubscribe(s) }, nil
}

func (b *MemoryBus) unsubscribe(s *memSub) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
	s.once.Do(func() { close(s.done) })
}

// Close implements Bus: it stops every subscription.
func (b *MemoryBus) Close() error {
	b.mu.Lock()
	b.closed = true
	subs := b.subs
	b.subs = map[*memSub]struct{}{}
	b.mu.Unlock()
	for s := range subs {
		s.once.Do(func() { close(s.done) })
	}
	return nil
}

// Check reports whether the bus is usable (for /readyz).
func (b *MemoryBus) Check(context.Context) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrBusClosed
	}
	return nil
}
