// Package bench implements `parley bench ingest` and `parley bench realtime`:
// load generators that measure the webhook → inbox pipeline and the
// realtime push against a server they start on 127.0.0.1 (the current
// binary's `serve` on a temp data dir; SQLite unless --database names a
// PostgreSQL database, where a throwaway schema is used) or against an
// existing server (--target URL --token T).
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"
)

// Main runs `parley bench <ingest|realtime> [flags]`.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("bench: which benchmark? ingest or realtime")
		}
		return nil
	}
	// The load generator shares the machine with the server it measures:
	// it should take as little of it as it can. It lives seconds, so
	// memory does not matter; collection does (an explicit GOGC wins).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	switch args[0] {
	case "ingest":
		o, err := parseIngest(args[1:], stderr)
		if err != nil {
			return err
		}
		return runIngest(ctx, o, stdout, stderr)
	case "realtime":
		o, err := parseRealtime(args[1:], stderr)
		if err != nil {
			return err
		}
		return runRealtime(ctx, o, stdout, stderr)
	}
	usage(stderr)
	return fmt.Errorf("bench: unknown benchmark %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: parley bench <benchmark> [flags]

Benchmarks:
  ingest     fire signed WhatsApp webhooks; measure acks and the time until every message is visible
  realtime   post webhooks at given rates; measure the latency until WebSocket clients see each message
             (--fanout N: N WebSocket connections, latency to all of them and the server's memory)

By default a server is started from this binary on 127.0.0.1 with a temp data dir (SQLite; --database
postgres://… uses a throwaway schema in that database). --target URL --token T use a running server.
Run `+"`parley bench <benchmark> -h`"+` for its flags.
`)
}

// common are the flags of every benchmark.
type common struct {
	target   string
	token    string
	wsID     string
	database string
	binary   string
	timeout  time.Duration
}

func (c *common) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.target, "target", "", "URL of a running server (default: start one on 127.0.0.1)")
	fs.StringVar(&c.token, "token", "", "with --target: an admin's API token")
	fs.StringVar(&c.wsID, "workspace", "", "with --target: workspace id (default: the token user's first)")
	fs.StringVar(&c.database, "database", "", "postgres://… for the started server (default SQLite in a temp dir)")
	fs.StringVar(&c.binary, "binary", "", "parley binary to start (default: this executable)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "give up waiting for the pipeline after this long")
}

func (c *common) check() error {
	if c.target != "" {
		u, err := url.Parse(c.target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--target: want an http(s) URL, got %q", c.target)
		}
		if c.token == "" {
			return errors.New("--target needs --token (an admin's API token)")
		}
		if c.database != "" {
			return errors.New("--database applies to the started server, not to --target")
		}
		c.target = strings.TrimRight(c.target, "/")
	} else if c.token != "" || c.wsID != "" {
		return errors.New("--token and --workspace apply only with --target")
	}
	if c.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	return nil
}

// env is a prepared benchmark target.
type env struct {
	w      *workspace
	srv    *server // nil with --target
	server string  // description for the report
}

func (e *env) close() {
	if e.srv != nil {
		e.srv.stop()
	}
}

// open starts a server (unless --target) and prepares a workspace and channel.
func open(ctx context.Context, c common, stderr io.Writer) (*env, error) {
	e := &env{}
	base := c.target
	if base == "" {
		fmt.Fprintln(stderr, "bench: starting a server…")
		srv, err := startServer(ctx, c.binary, c.database)
		if err != nil {
			return nil, err
		}
		e.srv = srv
		base = srv.URL
		e.server = fmt.Sprintf("started %s (%s, pid %d)", base, srv.Dialect, srv.PID())
	} else {
		e.server = "target " + base
	}
	w, err := prepare(ctx, base, c.token, c.wsID)
	if err != nil {
		e.close()
		if e.srv != nil {
			return nil, fmt.Errorf("%w\nserver log:\n%s", err, e.srv.tail())
		}
		return nil, err
	}
	e.w = w
	return e, nil
}

// table prints label/value rows aligned.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table { return &table{tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)} }

func (t *table) row(label, format string, args ...any) {
	fmt.Fprintf(t.tw, "  %s\t%s\n", label, fmt.Sprintf(format, args...))
}

func (t *table) flush() error { return t.tw.Flush() }

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
