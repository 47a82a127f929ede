package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/parleyhq/parley/internal/config"
)

// repairCmd runs the dry-run-first maintenance tools:
//
//	parley repair reprocess --channel ID --since TIME [--dry-run]
//	parley repair media-cache [--dry-run]
func repairCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: parley repair reprocess --channel ID --since TIME [--dry-run]\n       parley repair media-cache [--dry-run]")
		return errors.New("repair needs a tool: reprocess or media-cache")
	}
	tool, args := args[0], args[1:]
	fs := flag.NewFlagSet("repair "+tool, flag.ContinueOnError)
	fs.SetOutput(stderr)
	finish := config.Bind(fs, getenv)
	dryRun := fs.Bool("dry-run", false, "report what would change and change nothing")
	var channelID, since string
	switch tool {
	case "reprocess":
		fs.StringVar(&channelID, "channel", "", "channel id whose inbound log is re-normalized (required)")
		fs.StringVar(&since, "since", "", "re-run entries received at or after this time, RFC 3339 or a duration ago like 72h (required)")
	case "media-cache":
	default:
		return fmt.Errorf("unknown repair tool %q (reprocess, media-cache)", tool)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := finish()
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer a.store.Close()
	p := newPipeline(a)
	var report any
	switch tool {
	case "reprocess":
		if channelID == "" || since == "" {
			return errors.New("reprocess needs --channel and --since")
		}
		from, err := parseSince(since, time.Now())
		if err != nil {
			return err
		}
		if report, err = p.ingest.Reprocess(ctx, channelID, from, *dryRun); err != nil {
			return err
		}
	case "media-cache":
		if report, err = p.media.Clean(ctx, *dryRun); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// parseSince reads an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time or a duration like 72h", s)
	}
	return now.Add(-d), nil
}
