package ingest

import (
	"context"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/store"
)

// Group titles that webhooks do not carry (Wappi) are looked up in the
// provider's chat list (channel.ChatDirectory) in the background, once per
// chat per groupLookupEvery (a renamed group is picked up then), and applied
// as group-info events: the title comes from chat metadata, never from a
// sender.
const (
	groupLookupEvery   = time.Hour
	groupLookupRetry   = 5 * time.Minute // after a failed lookup
	groupLookupTimeout = 30 * time.Second
	groupTriedMax      = 10000 // remembered lookups before old ones are forgotten
)

// lookupGroups queues the group chats of events that carried no title.
func (in *Ingest) lookupGroups(ctx context.Context, res Resolved, events []channel.Event) {
	dir, ok := res.Adapter.(channel.ChatDirectory)
	if !ok {
		return
	}
	var chats []string
	for _, ev := range events {
		if ev.IsGroup && ev.GroupTitle == "" && ev.ChatID != "" {
			chats = append(chats, ev.ChatID)
		}
	}
	if !in.groups.add(res.Channel.ID, chats) {
		return
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		in.runGroupLookups(ctx, res, dir)
	}()
}

// runGroupLookups looks up a channel's queued chats until none are left.
func (in *Ingest) runGroupLookups(ctx context.Context, res Resolved, dir channel.ChatDirectory) {
	ch := res.Channel.ID
	for {
		ids := in.groups.next(ch, ctx.Err() != nil)
		if len(ids) == 0 {
			return
		}
		lctx, cancel := context.WithTimeout(ctx, groupLookupTimeout)
		events, err := dir.GroupInfo(lctx, res.Config, ids)
		cancel()
		if len(events) > 0 {
			entry := store.InboundEntry{WorkspaceID: res.Channel.WorkspaceID, ChannelID: ch, ReceivedAt: time.Now()}
			if _, aerr := in.db.ApplyInbound(ctx, entry, res.Channel, events); aerr != nil && ctx.Err() == nil {
				in.log.Warn("ingest: apply group titles", "channel", ch, "err", aerr)
			}
		}
		if err != nil && ctx.Err() == nil {
			in.log.Debug("ingest: look up group titles", "channel", ch, "kind", res.Channel.Kind, "err", err)
			// Try the chats not found again sooner than usual.
			found := map[string]bool{}
			for _, ev := range events {
				found[ev.ChatID] = true
			}
			for _, id := range ids {
				if !found[id] {
					in.groups.retrySooner(ch, id, groupLookupRetry)
				}
			}
		}
	}
}
