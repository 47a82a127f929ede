package store

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCacheMax bounds the number of cached statements (generated multi-row
// INSERTs have one text per row count).
const stmtCacheMax = 1024

// stmtCache keeps prepared statements of SQLite's single write connection,
// keyed by SQL text. Parsing and planning a statement costs more than running
// it; the hot write paths run the same few dozen statements over and over.
//
// A statement cannot be prepared inside a write transaction (the one
// connection is busy), so a miss only records the text; write prepares the
// recorded texts once its transaction has ended, and later transactions use
// them through (*sql.Tx).StmtContext.
type stmtCache struct {
	db *sql.DB

	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	wanted map[string]bool
	failed map[string]bool
	closed bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}, wanted: map[string]bool{}, failed: map[string]bool{}}
}

// get returns the prepared statement of query, or nil (and remembers to
// prepare it) on a miss.
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.stmts[query]; ok {
		return s
	}
	if !c.closed && !c.failed[query] && len(c.stmts)+len(c.wanted) < stmtCacheMax {
		c.wanted[query] = true
	}
	return nil
}

// prepareWanted prepares the statements missed since the last call. It must
// be called while the caller holds no connection of c.db.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if len(c.wanted) == 0 || c.closed {
		c.mu.Unlock()
		return
	}
	list := make([]string, 0, len(c.wanted))
	for q := range c.wanted {
		list = append(list, q)
	}
	clear(c.wanted)
	c.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	for _, q := range list {
		s, err := c.db.PrepareContext(ctx, q)
		c.mu.Lock()
		switch {
		case err != nil:
			c.failed[q] = true // run as text from now on
		case c.closed || c.stmts[q] != nil:
			s.Close()
		default:
			c.stmts[q] = s
		}
		c.mu.Unlock()
	}
}

// close releases the statements (before the DB is closed).
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for q, s := range c.stmts {
		s.Close()
		delete(c.stmts, q)
	}
}
