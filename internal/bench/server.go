package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // schema set-up for --database postgres://…
)

// server is a `parley serve` child process on 127.0.0.1 with a temp data dir.
type server struct {
	URL     string
	Dialect string // "sqlite" or "postgres"
	cmd     *exec.Cmd
	dir     string
	logPath string
	exited  chan struct{}
	cleanup []func()
}

var listeningRE = regexp.MustCompile(`parley listening on (http://\S+)`)

// startServer execs binary (the current executable when empty) with
// `serve` on 127.0.0.1:0. A postgres database gets a throwaway schema.
func startServer(ctx context.Context, binary, database string) (*server, error) {
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the parley binary: %w", err)
		}
		binary = exe
	}
	dir, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, logPath: filepath.Join(dir, "server.log"), exited: make(chan struct{}), Dialect: "sqlite"}
	s.cleanup = append(s.cleanup, func() { _ = os.RemoveAll(dir) })
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			env = append(env, kv)
		}
	}
	env = append(env, "PARLEY_ADDR=127.0.0.1:0", "PARLEY_DATA_DIR="+dir, "PARLEY_LOG_LEVEL=warn")
	if database != "" {
		if !strings.HasPrefix(database, "postgres://") && !strings.HasPrefix(database, "postgresql://") {
			s.stop()
			return nil, fmt.Errorf("--database: want postgres://… (SQLite is the default)")
		}
		u, drop, err := freshSchema(ctx, database)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.cleanup = append(s.cleanup, drop)
		env = append(env, "PARLEY_DATABASE_URL="+u)
		s.Dialect = "postgres"
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		s.stop()
		return nil, err
	}
	s.cleanup = append(s.cleanup, func() { _ = logf.Close() })
	s.cmd = exec.Command(binary, "serve")
	s.cmd.Env = env
	s.cmd.Stderr = logf
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		s.stop()
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		s.stop()
		return nil, fmt.Errorf("start %s serve: %w", binary, err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	select {
	case s.URL = <-urls:
		return s, nil
	case <-s.exited:
		err = fmt.Errorf("the server exited before listening:\n%s", s.tail())
	case <-time.After(60 * time.Second):
		err = fmt.Errorf("the server did not start within 60s:\n%s", s.tail())
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.stop()
	return nil, err
}

// PID is the server's process id.
func (s *server) PID() int { return s.cmd.Process.Pid }

// tail returns the end of the server's log.
func (s *server) tail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop ends the server (SIGTERM, then SIGKILL after 20s) and removes its data.
func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(20 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.exited
			}
		}
	}
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
	s.cleanup = nil
}

// freshSchema creates a schema for one run and returns a URL using it and
// the function that drops it.
func freshSchema(ctx context.Context, base string) (string, func(), error) {
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	defer db.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "parley_bench_" + hex.EncodeToString(b)
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := db.ExecContext(cctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema in %s: %w", redact(base), err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = db.ExecContext(dctx, "DROP SCHEMA "+schema+" CASCADE")
	}
	return u.String(), drop, nil
}

// redact hides a URL's password.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(database URL)"
	}
	return u.Redacted()
}

// rssKB reads VmRSS of a process from /proc (Linux), in KiB.
func rssKB(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmRSS(f)
}

func parseVmRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("unexpected VmRSS line %q", line)
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line")
}
