package providersim

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// ParseFlags reads the CLI flags into Options (and whether to print JSON).
func ParseFlags(args []string, stderr io.Writer) (Options, bool, error) {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	var channels string
	var asJSON, verbose bool
	fs.StringVar(&o.Target, "target", "http://127.0.0.1:8080", "Parley base URL")
	fs.StringVar(&o.Workspace, "workspace", "", "workspace name or id")
	fs.StringVar(&o.Token, "token", "", "Parley API bearer token (or --email and --password)")
	fs.StringVar(&o.Email, "email", "", "login email (creates an API token)")
	fs.StringVar(&o.Password, "password", "", "login password")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:0", "address the provider simulator listens on")
	fs.StringVar(&o.PublicURL, "public-url", "", "URL Parley uses to reach the simulator (default http://<listen address>)")
	fs.Float64Var(&o.Rate, "rate", 2, "inbound messages per second")
	fs.DurationVar(&o.Duration, "duration", 0, "how long to play traffic (default 60s unless --count)")
	fs.IntVar(&o.Count, "count", 0, "stop after this many inbound webhooks")
	fs.Int64Var(&o.Seed, "seed", 1, "random seed (same seed, same traffic)")
	fs.StringVar(&channels, "channels", "", "comma-separated: "+strings.Join(AllChannels, ",")+" (wappi = all three networks; default all)")
	fs.DurationVar(&o.StatusDelay, "status-delay", 300*time.Millisecond, "pause between the status webhooks of one send")
	fs.IntVar(&o.ReplyEvery, "reply-every", 10, "an agent replies through Parley's API after every N inbound messages (0 = never)")
	fs.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	fs.BoolVar(&verbose, "v", false, "log delivery problems")
	if err := fs.Parse(args); err != nil {
		return Options{}, false, err
	}
	if fs.NArg() > 0 {
		return Options{}, false, fmt.Errorf("providersim: unexpected arguments %q", fs.Args())
	}
	if o.Rate <= 0 || o.Rate > 10000 {
		return Options{}, false, errors.New("providersim: --rate must be in (0, 10000]")
	}
	if o.Count < 0 || o.Duration < 0 || o.ReplyEvery < 0 {
		return Options{}, false, errors.New("providersim: --count and --duration must not be negative")
	}
	if o.Token == "" && (o.Email == "" || o.Password == "") {
		return Options{}, false, errors.New("providersim: give --token, or --email and --password")
	}
	if channels != "" {
		o.Channels = strings.Split(channels, ",")
		if _, err := expandChannels(o.Channels); err != nil {
			return Options{}, false, err
		}
	}
	if verbose {
		o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return o, asJSON, nil
}

// Main is the "simulate" command: it runs the provider simulator and plays
// customer traffic into a running Parley until done or ctx is cancelled.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "serve" {
		return serveMain(ctx, args[1:], stdout, stderr)
	}
	o, asJSON, err := ParseFlags(args, stderr)
	if err != nil {
		return err
	}
	o.Out = stderr
	sum, err := Run(ctx, o)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(sum)
	} else if sum.SimURL != "" {
		sum.Print(stdout)
	}
	if errors.Is(err, context.Canceled) {
		return nil // interrupted: the summary is the result
	}
	return err
}
