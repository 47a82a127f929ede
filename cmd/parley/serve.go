package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channel"
	apichannel "github.com/parleyhq/parley/internal/channel/api"
	"github.com/parleyhq/parley/internal/channel/instagram"
	"github.com/parleyhq/parley/internal/channel/messenger"
	"github.com/parleyhq/parley/internal/channel/telegram"
	"github.com/parleyhq/parley/internal/channel/twilio"
	"github.com/parleyhq/parley/internal/channel/wappi"
	"github.com/parleyhq/parley/internal/channel/whatsapp"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/secret"
	"github.com/parleyhq/parley/internal/store"
)

func newLogger(c config.Config, w io.Writer) *slog.Logger {
	level, _ := c.Level()
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(httpapi.LogHandler(h))
}

// app is everything serve wires together. Extensions (realtime hub, ingest
// and outbound workers, media) receive it before the server starts and add
// routes, readiness checks, change subscribers, background jobs and closers.
type app struct {
	cfg      config.Config
	key      []byte // the secret key (sealing, share URLs)
	log      *slog.Logger
	store    *store.DB
	secrets  *secret.Box
	metrics  *metrics.Metrics
	channels *channel.Registry
	deps     httpapi.Deps

	mu       sync.RWMutex
	onCommit []func([]inbox.Change)
	jobs     []func(ctx context.Context) error // run until ctx ends
	closers  []func() error                    // run in reverse order at shutdown
	// beforeShutdown run when shutdown starts, before in-flight requests drain
	// (e.g. closing WebSockets with a "server restarting" frame).
	beforeShutdown []func(ctx context.Context) error
}

// OnCommit subscribes f to every committed batch of changes.
func (a *app) OnCommit(f func([]inbox.Change)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onCommit = append(a.onCommit, f)
}

func (a *app) publish(cs []inbox.Change) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, f := range a.onCommit {
		f(cs)
	}
}

// adapters lists the channel adapters. Extension point: each channel package adds its adapter here.
func adapters() []channel.Adapter {
	return []channel.Adapter{
		apichannel.New(), instagram.New(), messenger.New(), telegram.New(), twilio.New(), wappi.New(), whatsapp.New(),
	}
}

// extensions run in order after the store is open and before the server
// listens. Extension point: realtime, ingest, outbound and media add themselves here.
func extensions() []func(ctx context.Context, a *app) error {
	return []func(ctx context.Context, a *app) error{wireRealtime, wirePipeline}
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Parse("serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	// The server allocates per request and per message: with Go's default
	// GOGC=100, collection takes about 8% of a 2-core machine under webhook
	// load. 200 trades memory for CPU (10,000 WebSocket clients: 183 → 218
	// MiB RSS, fan-out p99 lower too). An explicit GOGC wins.
	if getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	a, err := openApp(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	log := a.log
	a.closers = append(a.closers, a.store.Close)
	defer func() {
		for i := len(a.closers) - 1; i >= 0; i-- {
			if err := a.closers[i](); err != nil {
				log.Warn("shutdown", "err", err)
			}
		}
	}()
	a.metrics.DBStats(a.store.DBStats) // pool gauges
	// Listen before wiring, so that with PARLEY_ADDR=…:0 the default public URL
	// (webhook and share URLs) names the real port.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	if cfg.PublicURL == "http://"+cfg.Addr {
		a.cfg.PublicURL = "http://" + ln.Addr().String()
	}
	a.deps = httpapi.Deps{
		Store: a.store, Logger: log, Metrics: a.metrics, Secrets: a.secrets, Channels: a.channels,
		PublicURL: a.cfg.PublicURL, SecureCookies: cfg.SecureCookies(), MaxBodyBytes: cfg.MaxBodyBytes,
		Ready: map[string]func(context.Context) error{},
	}
	for _, ext := range extensions() {
		if err := ext(ctx, a); err != nil {
			return err
		}
	}
	srv := &http.Server{
		Handler:           httpapi.NewServer(a.deps),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	jobCtx, stopJobs := context.WithCancel(ctx)
	defer stopJobs()
	a.jobs = append(a.jobs, func(ctx context.Context) error { every(ctx, time.Hour, a.sweepSessions); return nil })
	var jobs sync.WaitGroup
	for _, job := range a.jobs {
		jobs.Go(func() {
			if err := job(jobCtx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("background job stopped", "err", err)
			}
		})
	}

	url := "http://" + ln.Addr().String()
	log.Info("parley listening", "addr", ln.Addr().String(), "public_url", a.cfg.PublicURL, "database", a.store.Dialect(), "version", version)
	fmt.Fprintf(stdout, "parley listening on %s\n", url)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	for _, f := range a.beforeShutdown {
		if err := f(sctx); err != nil {
			log.Warn("shutdown", "err", err)
		}
	}
	err = srv.Shutdown(sctx) // stop accepting, wait for in-flight requests
	stopJobs()
	jobs.Wait()
	if err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// sweepSessions deletes expired sessions.
func (a *app) sweepSessions(ctx context.Context) {
	if n, err := a.store.DeleteExpiredSessions(ctx, time.Now()); err != nil {
		a.log.Warn("delete expired sessions", "err", err)
	} else if n > 0 {
		a.log.Info("deleted expired sessions", "count", n)
	}
}

// every runs fn every d until ctx ends (the background jobs' loop).
func every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

func setupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	finish := config.Bind(fs, getenv)
	var in httpapi.SetupRequest
	fs.StringVar(&in.Workspace, "workspace", "", "name of the first workspace (required)")
	fs.StringVar(&in.Email, "email", "", "owner's email (required)")
	fs.StringVar(&in.Password, "password", "", "owner's password, 8+ characters (required)")
	fs.StringVar(&in.Name, "name", "", "owner's display name (default: the email's local part)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := finish()
	if err != nil {
		return err
	}
	if err := mkDataDir(cfg); err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Logger: newLogger(cfg, stderr)})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()
	out, err := httpapi.Setup(ctx, st, defaultParams(), in)
	if err != nil {
		var ie *inbox.Error
		if errors.As(err, &ie) && len(ie.Fields) > 0 {
			return fmt.Errorf("%s: %v", ie.Message, ie.Fields)
		}
		return err
	}
	_, err = fmt.Fprintf(stdout, "created workspace %q (%s) with owner %s\n", out.Workspace.Name, out.Workspace.ID, out.User.Email)
	return err
}

func migrateCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Parse("migrate", args, getenv, stderr)
	if err != nil {
		return err
	}
	if err := mkDataDir(cfg); err != nil {
		return err
	}
	n, err := store.Migrate(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "applied %d migration(s)\n", n)
	return err
}

// openApp opens the secret key, the store and the pieces every command that
// runs the pipeline needs (serve, repair). Committed changes go to a.publish.
func openApp(ctx context.Context, cfg config.Config, stderr io.Writer) (*app, error) {
	log := newLogger(cfg, stderr)
	key, err := cfg.Key()
	if err != nil {
		return nil, err
	}
	box, err := secret.New(key)
	if err != nil {
		return nil, err
	}
	if err := mkDataDir(cfg); err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, key: key, log: log, secrets: box, metrics: metrics.New(), channels: channel.NewRegistry(adapters()...)}
	if a.store, err = store.Open(ctx, cfg.DatabaseURL, store.Options{Logger: log, OnCommit: a.publish, PublicURL: cfg.PublicURL}); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return a, nil
}

func mkDataDir(cfg config.Config) error {
	if !strings.HasPrefix(cfg.DatabaseURL, "sqlite:") && cfg.SecretKey != "" {
		return nil
	}
	return os.MkdirAll(cfg.DataDir, 0o700)
}

func defaultParams() auth.Params { return auth.DefaultParams }
