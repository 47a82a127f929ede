// Package store implements inbox.Store on SQLite (modernc.org/sqlite) and
// PostgreSQL (pgx via database/sql) with one data layer: the SQL is written
// once in the subset both share, and dialect.go holds the few differences.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/parleyhq/parley/internal/inbox"
)

// Options configure a DB.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; the time of a transaction is read once at its BEGIN.
	Now func() time.Time
	// OnCommit is called after every committed transaction that appended
	// change rows, with those rows in seq order. It must not block for long.
	OnCommit func(changes []inbox.Change)
	// ReadConns caps the read pool (default 8 for SQLite, 16 for PostgreSQL).
	ReadConns int
	// PublicURL is the server's public URL: channel change rows carry the
	// channel's webhook URL under it, as the API's answers do.
	PublicURL string
}

// DB is the store. It is safe for concurrent use.
type DB struct {
	d    dialect
	wdb  *sql.DB // writes (one connection for SQLite)
	rdb  *sql.DB // reads
	log  *slog.Logger
	now  func() time.Time
	hook func([]inbox.Change)
	// publicURL: see Options.PublicURL.
	publicURL string
	// stmts caches prepared statements of the write connection (SQLite only).
	stmts *stmtCache
	// The WAL checkpointer of an SQLite file: closing stopCheckpoints stops
	// it, checkpointsDone is closed when it has stopped.
	stopCheckpoints chan struct{}
	checkpointsDone chan struct{}
	// writeGen counts the write transactions begun other than the inbound
	// pipeline's own (see plCache); plc is that cache (SQLite only).
	writeGen atomic.Uint64
	plc      *plCache
}

// checkpointEvery is how often the SQLite WAL is copied back into the
// database file. The write connection never checkpoints on its own: SQLite's
// automatic checkpoint runs inside the commit that crosses its threshold and
// holds the single writer, and with it every webhook acknowledgement, for the
// whole copy and fsync (7-10 ms every few transactions under load). A read
// connection checkpoints instead, PASSIVE: it blocks neither the writer nor
// the readers.
//
// A PASSIVE checkpoint never restarts the WAL, though: SQLite starts it over
// only once every frame is copied and no reader uses it, which never happens
// under sustained writes with readers about. The WAL then grows without end
// (1 GB in a minute of 5,000 webhooks/s), and every read and write slows down
// with it. So once it holds walRestartFrames, the checkpointer takes its turn
// on the write connection for a RESTART checkpoint, and the next write starts
// the WAL over. At 5,000 webhooks/s the WAL grows by about 100 MB/s, so that
// is about every second; the turn was 15-25 ms when the RESTART had to copy
// and sync everything written since the last PASSIVE checkpoint, and is a
// few milliseconds once PASSIVE ones have chased the writer first.
const (
	checkpointEvery  = 100 * time.Millisecond
	walRestartFrames = 16384 // 64 MiB of 4 KiB pages
)

func (db *DB) checkpoints() {
	defer close(db.checkpointsDone)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-db.stopCheckpoints:
			return
		case <-t.C:
		}
		var busy, frames, copied int
		if err := db.rdb.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
			db.log.Warn("store: wal checkpoint", "err", err)
			continue
		}
		if frames >= walRestartFrames {
			// Chase the writer with more PASSIVE checkpoints (which do not
			// block it) until one finds little new to copy: what the
			// RESTART then copies and syncs while it holds the writer is a
			// few milliseconds of writes, not everything since the last.
			for range 6 {
				prev := frames
				if err := db.rdb.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil || frames-prev < 256 {
					break
				}
			}
			if err := db.restartWAL(); err != nil {
				db.log.Warn("store: wal checkpoint (restart)", "err", err)
			}
		}
	}
}

// restartWAL runs a RESTART checkpoint on the write connection without
// waiting: a reader still on an old snapshot (or another process writing)
// makes it give up at once, to try again at the next tick, instead of holding
// the writer (and every acknowledgement) for the busy timeout.
func (db *DB) restartWAL() error {
	ctx := context.Background()
	c, err := db.wdb.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
		return err
	}
	var busy, frames, copied int
	err = c.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &copied)
	if _, rerr := c.ExecContext(ctx, `PRAGMA busy_timeout = 5000`); err == nil {
		err = rerr
	}
	if err == nil && busy != 0 {
		db.log.Debug("store: wal restart deferred (a reader or another writer)", "frames", frames, "copied", copied)
	}
	return err
}

var _ inbox.Store = (*DB)(nil)

// Open connects to databaseURL ("sqlite:<path>", "sqlite::memory:" or
// "postgres://…") and applies pending migrations.
func Open(ctx context.Context, databaseURL string, opts Options) (*DB, error) {
	db, err := open(databaseURL, opts)
	if err != nil {
		return nil, err
	}
	if _, err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Migrate applies pending migrations to databaseURL and reports how many ran.
func Migrate(ctx context.Context, databaseURL string) (int, error) {
	db, err := open(databaseURL, Options{})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return db.migrate(ctx)
}

func open(databaseURL string, opts Options) (*DB, error) {
	db := &DB{log: opts.Logger, now: opts.Now, hook: opts.OnCommit, publicURL: opts.PublicURL}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	if db.now == nil {
		db.now = time.Now
	}
	switch {
	case strings.HasPrefix(databaseURL, "sqlite:"):
		db.d = dialect{name: "sqlite"}
		path := strings.TrimPrefix(databaseURL, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return nil, fmt.Errorf("store: empty sqlite path in %q", databaseURL)
		}
		memory := path == ":memory:"
		dsn := func(txlock, cacheKiB string) string {
			// busy_timeout first: later pragmas may need to wait for a lock.
			q := "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-" + cacheKiB + ")"
			if !memory {
				q += "&_pragma=journal_mode(WAL)"
			}
			if txlock != "" {
				q += "&_txlock=" + txlock
			}
			if memory {
				return "file::memory:?" + q
			}
			return "file:" + path + "?" + q
		}
		wdsn := dsn("immediate", "65536")
		if !memory {
			wdsn += "&_pragma=wal_autocheckpoint(0)" // see checkpoints
		}
		w, err := sql.Open("sqlite", wdsn)
		if err != nil {
			return nil, err
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		w.SetConnMaxIdleTime(0)
		db.wdb = w
		db.stmts = newStmtCache(w)
		db.plc = &plCache{}
		if memory {
			// One in-memory database lives on one connection: share it.
			db.rdb = w
			break
		}
		r, err := sql.Open("sqlite", dsn("", "16384"))
		if err != nil {
			w.Close()
			return nil, err
		}
		n := opts.ReadConns
		if n <= 0 {
			n = 8
		}
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		db.rdb = r
		db.stopCheckpoints, db.checkpointsDone = make(chan struct{}), make(chan struct{})
		go db.checkpoints()
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		db.d = dialect{name: "postgres"}
		p, err := sql.Open("pgx", databaseURL)
		if err != nil {
			return nil, err
		}
		n := opts.ReadConns
		if n <= 0 {
			n = 16
		}
		p.SetMaxOpenConns(n + 8)
		p.SetMaxIdleConns(n)
		p.SetConnMaxIdleTime(5 * time.Minute)
		db.wdb, db.rdb = p, p
	default:
		return nil, fmt.Errorf("store: unsupported database URL %q (want sqlite:<path> or postgres://…)", redactURL(databaseURL))
	}
	return db, nil
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxx")
	}
	return u.String()
}

// Close releases the connections.
func (db *DB) Close() error {
	if db.stopCheckpoints != nil {
		close(db.stopCheckpoints)
		<-db.checkpointsDone
		db.stopCheckpoints = nil
	}
	if db.stmts != nil {
		db.stmts.close()
	}
	err := db.wdb.Close()
	if db.rdb != db.wdb {
		if e := db.rdb.Close(); err == nil {
			err = e
		}
	}
	return err
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.rdb.PingContext(ctx); err != nil {
		return inbox.Wrap(inbox.Internal, err, "database unreachable")
	}
	return nil
}

// Dialect is "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.d.name }

// statements counts the statements run through tx, for benchmarks
// (statements per applied message).
var statements atomic.Int64

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// tx is a unit of work: a transaction (or, for single reads, the read pool),
// the time fixed at its start and the change rows it appends.
type tx struct {
	ctx     context.Context
	q       querier
	d       dialect
	now     time.Time
	changes []inbox.Change
	// publicURL is the DB's (write transactions: channel change rows).
	publicURL string
	// Set for write transactions on SQLite: statements are taken from the
	// DB's cache (parsing SQL is most of the cost of a small statement).
	stx   *sql.Tx
	cache *stmtCache
	stmts map[string]*sql.Stmt // this transaction's handles of cached statements
	open  map[string]*sql.Rows // the last rows of each cached query (a statement is reused only when they are closed)
}

// stmt returns a transaction-bound prepared statement for query when the
// statement cache has it, else nil (the caller runs the text directly).
func (t *tx) stmt(query string) *sql.Stmt {
	if t.cache == nil {
		return nil
	}
	if s, ok := t.stmts[query]; ok {
		if prev := t.open[query]; prev != nil {
			if _, err := prev.Columns(); err == nil {
				// Its rows are still being read (a nested use of the same
				// text): a statement cannot serve two at once.
				return nil
			}
			delete(t.open, query)
		}
		return s
	}
	p := t.cache.get(query)
	if p == nil {
		return nil
	}
	s := t.stx.StmtContext(t.ctx, p)
	if t.stmts == nil {
		t.stmts = make(map[string]*sql.Stmt, 32)
	}
	t.stmts[query] = s
	return s
}

func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	statements.Add(1)
	query = t.d.rebind(query)
	if s := t.stmt(query); s != nil {
		return s.ExecContext(t.ctx, args...)
	}
	return t.q.ExecContext(t.ctx, query, args...)
}

func (t *tx) query(query string, args ...any) (*sql.Rows, error) {
	statements.Add(1)
	query = t.d.rebind(query)
	if s := t.stmt(query); s != nil {
		rows, err := s.QueryContext(t.ctx, args...)
		if err == nil {
			if t.open == nil {
				t.open = make(map[string]*sql.Rows, 8)
			}
			t.open[query] = rows
		}
		return rows, err
	}
	return t.q.QueryContext(t.ctx, query, args...)
}

func (t *tx) queryRow(query string, args ...any) *sql.Row {
	statements.Add(1)
	query = t.d.rebind(query)
	if s := t.stmt(query); s != nil {
		return s.QueryRowContext(t.ctx, args...)
	}
	return t.q.QueryRowContext(t.ctx, query, args...)
}

// emit appends a change row; its seq is allocated when the transaction ends.
func (t *tx) emit(wsID, entity, op, id string, data any) error {
	var raw json.RawMessage
	if op != inbox.OpDelete && data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		raw = b
	}
	t.changes = append(t.changes, inbox.Change{WorkspaceID: wsID, Entity: entity, Op: op, ID: id, Data: raw, At: t.now})
	return nil
}

// flushChanges allocates a contiguous block of seqs per workspace from the
// workspace's counter (the row lock serialises writers of one workspace until
// commit, so commit order is seq order) and inserts the rows.
func (t *tx) flushChanges() error {
	if len(t.changes) == 0 {
		return nil
	}
	// Collapse repeated upserts of the same entity in one transaction to the last one.
	type key struct{ ws, entity, id string }
	last := map[key]int{}
	for i, c := range t.changes {
		last[key{c.WorkspaceID, c.Entity, c.ID}] = i
	}
	kept := t.changes[:0:0]
	for i, c := range t.changes {
		if last[key{c.WorkspaceID, c.Entity, c.ID}] == i {
			kept = append(kept, c)
		}
	}
	byWS := map[string][]int{}
	var order []string
	for i, c := range kept {
		if _, ok := byWS[c.WorkspaceID]; !ok {
			order = append(order, c.WorkspaceID)
		}
		byWS[c.WorkspaceID] = append(byWS[c.WorkspaceID], i)
	}
	sort.Strings(order) // a fixed lock order across workspaces
	for _, ws := range order {
		idx := byWS[ws]
		var end int64
		if err := t.queryRow(`UPDATE workspaces SET change_seq = change_seq + ? WHERE id = ? RETURNING change_seq`, int64(len(idx)), ws).Scan(&end); err != nil {
			return fmt.Errorf("allocate change seq: %w", err)
		}
		seq := end - int64(len(idx))
		const per = 100
		for start := 0; start < len(idx); start += per {
			chunk := idx[start:min(start+per, len(idx))]
			var b strings.Builder
			b.WriteString(`INSERT INTO changes (workspace_id, seq, entity, op, entity_id, data, created_at) VALUES `)
			args := make([]any, 0, len(chunk)*7)
			for j, i := range chunk {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
				seq++
				kept[i].Seq = seq
				var data any
				if kept[i].Data != nil {
					data = string(kept[i].Data)
				}
				args = append(args, ws, seq, kept[i].Entity, kept[i].Op, kept[i].ID, data, ts(t.now))
			}
			if _, err := t.exec(b.String(), args...); err != nil {
				return fmt.Errorf("insert changes: %w", err)
			}
		}
	}
	sort.SliceStable(kept, func(a, b int) bool {
		if kept[a].WorkspaceID != kept[b].WorkspaceID {
			return kept[a].WorkspaceID < kept[b].WorkspaceID
		}
		return kept[a].Seq < kept[b].Seq
	})
	t.changes = kept
	return nil
}

// clock returns the transaction time: UTC, microsecond precision (what is stored).
func (db *DB) clock() time.Time { return db.now().UTC().Truncate(time.Microsecond) }

// write runs fn in a write transaction, appends its change rows, commits and
// then hands the changes to OnCommit.
func (db *DB) write(ctx context.Context, fn func(t *tx) error) error {
	return db.writeTx(ctx, false, fn)
}

// writeKeep is write for the inbound pipeline's transactions, which keep
// the pipeline's cache exact themselves (plCache): they do not count in
// writeGen.
func (db *DB) writeKeep(ctx context.Context, fn func(t *tx) error) error {
	return db.writeTx(ctx, true, fn)
}

func (db *DB) writeTx(ctx context.Context, keep bool, fn func(t *tx) error) error {
	stx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return db.d.mapError(err)
	}
	if !keep {
		db.writeGen.Add(1)
	}
	t := &tx{ctx: ctx, q: stx, d: db.d, now: db.clock(), stx: stx, cache: db.stmts, publicURL: db.publicURL}
	if err := fn(t); err != nil {
		stx.Rollback()
		db.stmts.prepareWanted(ctx)
		return db.d.mapError(err)
	}
	if err := t.flushChanges(); err != nil {
		stx.Rollback()
		db.stmts.prepareWanted(ctx)
		return db.d.mapError(err)
	}
	err = stx.Commit()
	// The connection is free again: prepare the statements this
	// transaction ran uncached, for the next ones.
	db.stmts.prepareWanted(ctx)
	if err != nil {
		return db.d.mapError(err)
	}
	if len(t.changes) > 0 && db.hook != nil {
		db.hook(t.changes)
	}
	return nil
}

// read runs fn against the read pool without a transaction (single statements
// or reads that need no cross-statement consistency).
func (db *DB) read(ctx context.Context, fn func(t *tx) error) error {
	t := &tx{ctx: ctx, q: db.rdb, d: db.d, now: db.clock()}
	return db.d.mapError(fn(t))
}

// readTx runs fn in a read-only transaction: every statement sees one snapshot.
func (db *DB) readTx(ctx context.Context, fn func(t *tx) error) error {
	stx, err := db.rdb.BeginTx(ctx, db.d.readTxOptions())
	if err != nil {
		return db.d.mapError(err)
	}
	defer stx.Rollback()
	t := &tx{ctx: ctx, q: stx, d: db.d, now: db.clock()}
	if err := fn(t); err != nil {
		return db.d.mapError(err)
	}
	return db.d.mapError(stx.Commit())
}
