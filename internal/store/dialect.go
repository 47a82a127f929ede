package store

import (
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/parleyhq/parley/internal/inbox"
)

// dialect is the small shim between the shared SQL and the two databases.
// Everything else in this package is written once.
type dialect struct {
	name string // "sqlite" or "postgres"
}

// rebind turns ? placeholders into $1, $2 … for PostgreSQL. Question marks
// inside single-quoted literals are left alone.
func (d dialect) rebind(q string) string {
	if d.name != "postgres" || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	inQuote := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inQuote = !inQuote
			b.WriteByte(c)
		case c == '?' && !inQuote:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// migrationDir is the embedded directory of this dialect's migrations.
func (d dialect) migrationDir() string { return "migrations/" + d.name }

// readTxOptions are the options of a consistent multi-statement read.
// SQLite read transactions are snapshots already; PostgreSQL needs REPEATABLE READ.
func (d dialect) readTxOptions() *sql.TxOptions {
	if d.name == "postgres" {
		return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	return &sql.TxOptions{ReadOnly: true}
}

// forUpdate locks the selected rows until the transaction ends (PostgreSQL);
// SQLite has one writer at a time, so it needs nothing.
func (d dialect) forUpdate() string {
	if d.name == "postgres" {
		return " FOR UPDATE"
	}
	return ""
}

// globalLock serialises a rare, database-wide operation (set-up, migrations)
// across PostgreSQL sessions; "" for SQLite, whose writes are serial already.
func (d dialect) globalLock(key int64) string {
	if d.name == "postgres" {
		return "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(key, 10) + ")"
	}
	return ""
}

// errorKind classifies a driver error by its code (never by its text).
type errorKind int

const (
	errOther errorKind = iota
	errUnique
	errForeignKey
	errNotNull
	errBadText // text the database cannot store (PostgreSQL: NUL, invalid UTF-8)
)

func (d dialect) classify(err error) errorKind {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return errUnique
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return errForeignKey
		case sqlite3.SQLITE_CONSTRAINT_NOTNULL:
			return errNotNull
		}
		return errOther
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return errUnique
		case "23503":
			return errForeignKey
		case "23502":
			return errNotNull
		case "22021", "22P05": // invalid byte sequence; untranslatable character (\u0000 in JSON)
			return errBadText
		}
	}
	return errOther
}

// mapError turns driver errors into inbox errors; inbox errors pass through.
func (d dialect) mapError(err error) error {
	if err == nil {
		return nil
	}
	var ie *inbox.Error
	if errors.As(err, &ie) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return inbox.Wrap(inbox.NotFound, err, "not found")
	}
	switch d.classify(err) {
	case errUnique:
		return inbox.Wrap(inbox.Conflict, err, "already exists")
	case errForeignKey:
		return inbox.Wrap(inbox.Conflict, err, "still referenced or references a missing record")
	case errNotNull:
		return inbox.Wrap(inbox.Invalid, err, "a required value is missing")
	case errBadText:
		return inbox.Wrap(inbox.Invalid, err, "text contains a character that cannot be stored (NUL or invalid UTF-8)")
	}
	return inbox.Wrap(inbox.Internal, err, "database error")
}
