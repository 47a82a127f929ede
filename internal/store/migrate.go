package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations
var migrationsFS embed.FS

// migration is one numbered SQL file.
type migration struct {
	Version int
	Name    string
	SQL     string
}

// loadMigrations reads the embedded migrations of a dialect, sorted by number.
// Files are named NNNN_name.sql.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	seen := map[int]bool{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		base := strings.TrimSuffix(e.Name(), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		if seen[v] {
			return nil, fmt.Errorf("migration %s: duplicate number %d", e.Name(), v)
		}
		seen[v] = true
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Advisory lock keys.
const (
	lockMigrate = 7262725379
	lockSetup   = 7262725380
)

// migrate applies pending migrations, each in its own transaction.
func (db *DB) migrate(ctx context.Context) (int, error) {
	ms, err := loadMigrations(migrationsFS, db.d.migrationDir())
	if err != nil {
		return 0, err
	}
	if _, err := db.wdb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at BIGINT NOT NULL)`); err != nil {
		return 0, fmt.Errorf("store: create schema_migrations: %w", err)
	}
	applied := 0
	for _, m := range ms {
		err := db.write(ctx, func(t *tx) error {
			// Serialise concurrent migrators (several nodes starting at once).
			if q := db.d.globalLock(lockMigrate); q != "" {
				if _, err := t.exec(q); err != nil {
					return err
				}
			}
			var n int
			if err := t.queryRow(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := t.exec(m.SQL); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := t.exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.Version, m.Name, ts(t.now)); err != nil {
				return err
			}
			applied++
			db.log.Info("applied migration", "version", m.Version, "name", m.Name)
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("store: %w", err)
		}
	}
	return applied, nil
}
