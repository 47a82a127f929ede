package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/inbox"
)

// memLog is an in-memory change log with the store's semantics: per
// workspace contiguous seqs allocated at commit, OnCommit called after the
// commit (outside the lock, so concurrent commits may publish out of order),
// Conflict for a cursor that is older than the retained log or unknown.
type memLog struct {
	mu       sync.Mutex
	head     map[string]int64
	pruned   map[string]int64 // seqs ≤ pruned are no longer retained
	log      map[string][]inbox.Change
	onCommit func([]inbox.Change)
	fail     error // when set, Changes fails with it
	reads    int
}

func newMemLog() *memLog {
	return &memLog{head: map[string]int64{}, pruned: map[string]int64{}, log: map[string][]inbox.Change{}}
}

// SetOnCommit sets the after-commit hook.
func (l *memLog) SetOnCommit(fn func([]inbox.Change)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onCommit = fn
}

// change describes one change to commit.
type change struct {
	entity, op, id string
	data           any
}

// Commit appends changes atomically and then calls onCommit.
func (l *memLog) Commit(ws string, cs ...change) []inbox.Change {
	l.mu.Lock()
	out := make([]inbox.Change, 0, len(cs))
	for _, c := range cs {
		l.head[ws]++
		var data json.RawMessage
		if c.data != nil {
			b, err := json.Marshal(c.data)
			if err != nil {
				panic(err)
			}
			data = b
		}
		op := c.op
		if op == "" {
			op = inbox.OpUpsert
		}
		ch := inbox.Change{WorkspaceID: ws, Seq: l.head[ws], Entity: c.entity, Op: op, ID: c.id, Data: data, At: time.Now().UTC()}
		l.log[ws] = append(l.log[ws], ch)
		out = append(out, ch)
	}
	fn := l.onCommit
	l.mu.Unlock()
	if fn != nil {
		fn(out)
	}
	return out
}

// CommitN commits n conversation upserts, one per commit.
func (l *memLog) CommitN(ws string, n int) {
	for i := 0; i < n; i++ {
		l.Commit(ws, change{entity: inbox.EntityConversation, id: fmt.Sprintf("c%d", i), data: map[string]any{"id": fmt.Sprintf("c%d", i), "n": i}})
	}
}

// Prune forgets the changes with seq ≤ upTo.
func (l *memLog) Prune(ws string, upTo int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	keep := l.log[ws][:0:0]
	for _, c := range l.log[ws] {
		if c.Seq > upTo {
			keep = append(keep, c)
		}
	}
	l.log[ws] = keep
	l.pruned[ws] = upTo
}

func (l *memLog) Head(ws string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head[ws]
}

func (l *memLog) Changes(ctx context.Context, ws, since string, limit int) (inbox.ChangeBatch, error) {
	if err := ctx.Err(); err != nil {
		return inbox.ChangeBatch{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	if l.fail != nil {
		return inbox.ChangeBatch{}, l.fail
	}
	var s int64
	if since != "" {
		n, err := strconv.ParseInt(since, 10, 64)
		if err != nil || n < 0 {
			return inbox.ChangeBatch{}, inbox.Errorf(inbox.Conflict, "unknown cursor")
		}
		s = n
	}
	if s < l.pruned[ws] || s > l.head[ws] {
		return inbox.ChangeBatch{}, inbox.Errorf(inbox.Conflict, "cursor too old or unknown")
	}
	b := inbox.ChangeBatch{Cursor: strconv.FormatInt(s, 10), Changes: []inbox.Change{}}
	for _, c := range l.log[ws] {
		if c.Seq <= s {
			continue
		}
		if len(b.Changes) == limit {
			b.More = true
			break
		}
		b.Changes = append(b.Changes, c)
		b.Cursor = strconv.FormatInt(c.Seq, 10)
	}
	return b, nil
}
