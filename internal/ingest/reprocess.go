package ingest

import (
	"context"
	"time"

	"github.com/parleyhq/parley/internal/store"
)

// Report is what a reprocess did (or would do, in a dry run).
type Report struct {
	Entries     int  `json:"entries"`
	Events      int  `json:"events"`
	NewMessages int  `json:"new_messages"`
	Changed     int  `json:"changed"`
	Unchanged   int  `json:"unchanged"`
	Pending     int  `json:"pending"`
	Unparsed    int  `json:"unparsed"`
	DryRun      bool `json:"dry_run"`
}

// Reprocess re-runs normalization over a channel's inbound log from since
// (after a parser fix). Applying is idempotent, so nothing is duplicated: it
// fills in what the old parser missed. A dry run rolls every entry back.
func (in *Ingest) Reprocess(ctx context.Context, channelID string, since time.Time, dryRun bool) (Report, error) {
	rep := Report{DryRun: dryRun}
	res, err := in.chans.Resolve(ctx, channelID)
	if err != nil {
		return rep, err
	}
	after := ""
	for {
		entries, err := in.db.InboundSince(ctx, channelID, since, after, 200)
		if err != nil {
			return rep, err
		}
		for _, e := range entries {
			events := in.parse(res, e)
			if len(events) == 1 && events[0].ExternalID == store.UnparsedExternalID(e.ID) {
				rep.Unparsed++
			}
			var r store.ApplyResult
			if dryRun {
				r, err = in.db.ApplyInboundDryRun(ctx, e, res.Channel, events)
			} else {
				r, err = in.db.ApplyInbound(ctx, e, res.Channel, events)
			}
			if err != nil {
				return rep, err
			}
			rep.Entries++
			rep.Events += r.Events
			rep.NewMessages += r.NewMessages
			rep.Changed += r.Changed
			rep.Unchanged += r.Unchanged
			rep.Pending += r.Pending
			after = e.ID
		}
		if len(entries) < 200 {
			return rep, nil
		}
	}
}
