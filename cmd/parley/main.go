// Command parley is the Parley team inbox: one binary with the server and its tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/parleyhq/parley/internal/bench"
	"github.com/parleyhq/parley/internal/providersim"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "parley:", err)
		}
		os.Exit(2)
	}
}

// command is one subcommand. Other work adds its commands to commands().
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error
}

// commands lists every subcommand. Extension point: sim, bench, repair and
// backup are added here by the work that writes them.
func commands() []command {
	return []command{
		{"serve", "run the server (HTTP API, web app, webhooks, workers)", serve},
		{"setup", "create the first workspace and owner (--workspace --email --password [--name])", setupCmd},
		{"migrate", "apply pending database migrations", migrateCmd},
		{"repair", "dry-run-first repairs: reprocess (re-normalize the inbound log), media-cache (clean cached media)", repairCmd},
		{"bench", "load benchmarks: ingest (webhooks/s, ack latency, ack → visible), realtime (webhook → WebSocket latency, --fanout)", func(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
			return bench.Main(ctx, args, stdout, stderr)
		}},
		{"sim", "play simulated provider traffic into a running Parley (--target --workspace --email --password)", func(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
			return providersim.Main(ctx, args, stdout, stderr)
		}},
		{"version", "print the version", func(_ context.Context, _ []string, _ func(string) string, stdout, _ io.Writer) error {
			_, err := fmt.Fprintln(stdout, "parley", version)
			return err
		}},
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Parley — an open-source team inbox.\n\nUsage: parley <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "  help       show this help\n\nRun `parley <command> -h` for a command's flags (every flag also reads its PARLEY_* variable).")
}
