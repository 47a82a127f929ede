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

type groupLookups struct {
	tried   map[string]time.Time       // channel + "\x00" + chat → when looked up
	want    map[string]map[string]bool // channel → chats to look up
	running map[string]bool            // channel → a lookup goroutine runs
}

// lookupGroups queues the group chats of events that carried no title.
func (in *Ingest) lookupGroups(ctx context.Context, res Resolved, events []channel.Event) {
	dir, ok := res.Adapter.(channel.ChatDirectory)
	if !ok {
		return
	}
	now := time.Now()
	in.groupMu.Lock()
	defer in.groupMu.Unlock()
	g := &in.groups
	queued := false
	for _, ev := range events {
		if !ev.IsGroup || ev.GroupTitle != "" || ev.ChatID == "" {
			continue
		}
		key := res.Channel.ID + "\x00" + ev.ChatID
		if at, ok := g.tried[key]; ok && now.Sub(at) < groupLookupEvery {
			continue
		}
		if len(g.tried) >= groupTriedMax {
			for k, at := range g.tried {
				if now.Sub(at) >= groupLookupEvery {
					delete(g.tried, k)
				}
			}
		}
		g.tried[key] = now
		if g.want[res.Channel.ID] == nil {
			g.want[res.Channel.ID] = map[string]bool{}
		}
		g.want[res.Channel.ID][ev.ChatID] = true
		queued = true
	}
	if !queued || g.running[res.Channel.ID] {
		return
	}
	g.running[res.Channel.ID] = true
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
		in.groupMu.Lock()
		want := in.groups.want[ch]
		delete(in.groups.want, ch)
		if len(want) == 0 || ctx.Err() != nil {
			in.groups.running[ch] = false
			in.groupMu.Unlock()
			return
		}
		in.groupMu.Unlock()
		ids := make([]string, 0, len(want))
		for id := range want {
			ids = append(ids, id)
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
			in.groupMu.Lock()
			for _, id := range ids {
				if !found[id] {
					in.groups.tried[ch+"\x00"+id] = time.Now().Add(groupLookupRetry - groupLookupEvery)
				}
			}
			in.groupMu.Unlock()
		}
	}
}
