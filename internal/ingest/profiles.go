package ingest

import (
	"context"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// Messenger and Instagram webhooks name a sender only by a page-scoped id
// (providers.md §2, §3): the name and picture come from the provider's
// profile API (channel.ProfileLookup). The senders of applied inbound
// messages that came without a name are looked up in the background, once
// per sender per profileLookupEvery and only while their contact has no
// name, and the answer fills the contact's empty name and avatar only: an
// operator's edit is never overwritten.
const (
	profileLookupEvery   = time.Hour
	profileLookupRetry   = 5 * time.Minute // after a failure worth retrying
	profileLookupTimeout = 15 * time.Second
	profileLookupsMax    = 4     // provider calls in flight, all channels together
	profileTriedMax      = 10000 // remembered lookups before old ones are forgotten
)

// profileWanted returns the identifier of an event's sender whose profile
// may be missing: the sender of an inbound direct message that carried no
// name ("" for anything else).
func profileWanted(ev channel.Event) string {
	if (ev.Type != channel.EventMessage && ev.Type != "") || ev.Direction == "outbound" || ev.IsGroup || ev.Sender.Name != "" {
		return ""
	}
	if ev.Sender.Identifier != "" {
		return ev.Sender.Identifier
	}
	return ev.ChatID
}

// lookupProfiles queues the unnamed senders of applied events for a profile
// lookup, when the channel's adapter has a profile API.
func (in *Ingest) lookupProfiles(ctx context.Context, res Resolved, events []channel.Event) {
	pl, ok := res.Adapter.(channel.ProfileLookup)
	if !ok {
		return
	}
	var ids []string
	for _, ev := range events {
		if id := profileWanted(ev); id != "" {
			ids = append(ids, id)
		}
	}
	if !in.profiles.add(res.Channel.ID, ids) {
		return
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		in.runProfileLookups(ctx, res, pl)
	}()
}

// runProfileLookups looks up a channel's queued senders until none are left.
func (in *Ingest) runProfileLookups(ctx context.Context, res Resolved, pl channel.ProfileLookup) {
	ch := res.Channel.ID
	for {
		ids := in.profiles.next(ch, ctx.Err() != nil)
		if len(ids) == 0 {
			return
		}
		for _, id := range ids {
			if ctx.Err() != nil {
				break
			}
			if in.lookupProfile(ctx, res, pl, id) {
				in.profiles.retrySooner(ch, id, profileLookupRetry)
			}
		}
	}
}

// lookupProfile looks one sender up unless its contact has a name by now,
// and fills the contact's empty fields with the answer. It reports whether
// the failure is worth retrying before the hour is out.
func (in *Ingest) lookupProfile(ctx context.Context, res Resolved, pl channel.ProfileLookup, id string) (retrySoon bool) {
	ws, ch := res.Channel.WorkspaceID, res.Channel.ID
	c, err := in.db.ContactByIdentity(ctx, ws, ch, id)
	switch {
	case inbox.IsCode(err, inbox.NotFound):
		return false // deleted since the message was applied
	case err != nil:
		if ctx.Err() == nil {
			in.log.Debug("ingest: sender profile: read contact", "channel", ch, "err", err)
		}
		return true
	case c.Name != "":
		return false // named meanwhile: by a webhook, an operator or an earlier lookup
	}
	select {
	case in.profileSlots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	lctx, cancel := context.WithTimeout(ctx, profileLookupTimeout)
	party, err := pl.Profile(lctx, res.Config, id)
	cancel()
	<-in.profileSlots
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		// The error names the endpoint without its query and never the
		// token (it travels in a header).
		in.log.Debug("ingest: look up sender profile", "channel", ch, "kind", res.Channel.Kind, "err", err)
		return channel.IsRetryable(err)
	}
	party.Identifier = id
	if party.Name == "" && party.AvatarURL == "" {
		return false
	}
	if _, err := in.db.FillContactProfile(ctx, ws, ch, party); err != nil {
		if ctx.Err() == nil {
			in.log.Warn("ingest: apply sender profile", "channel", ch, "err", err)
		}
		return true
	}
	return false
}
