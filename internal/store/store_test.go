package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// openSQLite opens a fresh SQLite store in a temp dir.
func openSQLite(t testing.TB, opts Options) *DB {
	t.Helper()
	db, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "parley.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testingPostgres() bool { return os.Getenv("PARLEY_TEST_POSTGRES_URL") != "" }

// postgresURL returns PARLEY_TEST_POSTGRES_URL or skips.
func postgresURL(t testing.TB) string {
	u := os.Getenv("PARLEY_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("PARLEY_TEST_POSTGRES_URL is not set; skipping PostgreSQL tests")
	}
	return u
}

// openPostgres opens a store in a fresh schema (dropped at cleanup).
func openPostgres(t testing.TB, opts Options) *DB {
	t.Helper()
	base := postgresURL(t)
	schema := "t_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	db, err := Open(context.Background(), base+sep+"search_path="+schema, opts)
	if err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	return db
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) inbox.Store { return openSQLite(t, Options{}) })
}

func TestPostgresConformance(t *testing.T) {
	postgresURL(t)
	storetest.Run(t, func(t *testing.T) inbox.Store { return openPostgres(t, Options{}) })
}

func TestMigrationSetsMatch(t *testing.T) {
	lite, err := loadMigrations(migrationsFS, dialect{name: "sqlite"}.migrationDir())
	if err != nil {
		t.Fatal(err)
	}
	pg, err := loadMigrations(migrationsFS, dialect{name: "postgres"}.migrationDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) == 0 {
		t.Fatal("no migrations embedded")
	}
	if len(lite) != len(pg) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].Version != pg[i].Version || lite[i].Name != pg[i].Name {
			t.Errorf("migration %d: sqlite %04d_%s vs postgres %04d_%s", i, lite[i].Version, lite[i].Name, pg[i].Version, pg[i].Name)
		}
		if lite[i].Version != i+1 {
			t.Errorf("migration numbers must be contiguous from 1: got %d at %d", lite[i].Version, i)
		}
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "m.db")
	n, err := Migrate(context.Background(), url)
	if err != nil || n == 0 {
		t.Fatalf("first Migrate = %d, %v", n, err)
	}
	n, err = Migrate(context.Background(), url)
	if err != nil || n != 0 {
		t.Fatalf("second Migrate = %d, %v", n, err)
	}
}

func TestOpenRejectsUnknownURL(t *testing.T) {
	for _, u := range []string{"", "mysql://x", "sqlite:"} {
		if _, err := Open(context.Background(), u, Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

func TestSQLiteMemory(t *testing.T) {
	db, err := Open(context.Background(), "sqlite::memory:", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, _, err := db.Setup(context.Background(), inbox.SetupInput{Workspace: "W", Name: "N", Email: "n@example.com", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.HasUsers(context.Background()); err != nil || !ok {
		t.Fatalf("HasUsers = %v, %v", ok, err)
	}
}

// TestOnCommit checks that committed changes reach the hook with their seqs,
// in order, and that failed transactions publish nothing.
func TestOnCommit(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(testing.TB, Options) *DB
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []inbox.Change
			db := tc.open(t, Options{OnCommit: func(cs []inbox.Change) {
				mu.Lock()
				got = append(got, cs...)
				mu.Unlock()
			}})
			ctx := context.Background()
			_, ws, err := db.Setup(ctx, inbox.SetupInput{Workspace: "W", Name: "N", Email: "n@example.com", PasswordHash: "h"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.CreateLabel(ctx, ws.ID, inbox.Label{Name: "a"}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.CreateLabel(ctx, ws.ID, inbox.Label{Name: "a"}); inbox.ErrorCode(err) != inbox.Conflict {
				t.Fatalf("duplicate label: %v", err)
			}
			b, err := db.Changes(ctx, ws.ID, "0", 100)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != len(b.Changes) || len(got) != 2 {
				t.Fatalf("hook got %d changes, log has %d", len(got), len(b.Changes))
			}
			for i := range got {
				if got[i].Seq != b.Changes[i].Seq || got[i].ID != b.Changes[i].ID || got[i].WorkspaceID != ws.ID {
					t.Fatalf("hook change %d = %+v, log %+v", i, got[i], b.Changes[i])
				}
			}
		})
	}
}

func TestRebind(t *testing.T) {
	d := dialect{name: "postgres"}
	for in, want := range map[string]string{
		"SELECT ? , ?":                   "SELECT $1 , $2",
		"SELECT '?' , ?":                 "SELECT '?' , $1",
		"x LIKE ? ESCAPE '\\' AND y = ?": "x LIKE $1 ESCAPE '\\' AND y = $2",
		"no params":                      "no params",
		"SELECT 'it''s ?', ? FROM t":     "SELECT 'it''s ?', $1 FROM t",
	} {
		if got := d.rebind(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (dialect{name: "sqlite"}).rebind("a = ?"); got != "a = ?" {
		t.Errorf("sqlite rebind changed the query: %q", got)
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(123, "abc"))
	f.Add("")
	f.Add("!!")
	f.Fuzz(func(t *testing.T, s string) {
		at, id, err := decodeCursor(s)
		if err != nil {
			if inbox.ErrorCode(err) != inbox.Invalid {
				t.Fatalf("decodeCursor error code %q", inbox.ErrorCode(err))
			}
			return
		}
		if at2, id2, err := decodeCursor(encodeCursor(at, id)); err != nil || at2 != at || id2 != id {
			t.Fatalf("round trip of %d %q failed: %d %q %v", at, id, at2, id2, err)
		}
	})
}

// TestSQLiteCheckpointsInBackground: commits never checkpoint the WAL (the
// writer's automatic checkpoint is off); the background checkpointer copies
// the committed frames back into the database file, where a reader that
// ignores the WAL (immutable=1) finds them.
func TestSQLiteCheckpointsInBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := Open(ctx, "sqlite:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var auto int
	if err := db.wdb.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	if _, _, err := db.Setup(ctx, inbox.SetupInput{Workspace: "W", Name: "A", Email: "a@example.com", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	// The file as it is on disk, without the WAL.
	file, err := sql.Open("sqlite", "file:"+path+"?immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	file.SetMaxOpenConns(1)
	deadline := time.Now().Add(30 * time.Second) // polling, not a timing assertion
	for {
		var n int
		err := file.QueryRow(`SELECT COUNT(*) FROM workspaces`).Scan(&n)
		if err == nil && n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the workspace never reached the database file: %d rows, %v", n, err)
		}
		file.Close() // an immutable reader caches the file: reopen
		if file, err = sql.Open("sqlite", "file:"+path+"?immutable=1"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
