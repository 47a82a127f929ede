package httpapi

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// reactionSupport is implemented by adapters that say whether their channel
// can send our reactions (the Meta adapters: WhatsApp yes, Messenger and
// Instagram no). An adapter without it is taken to send them: its Send
// handles Outgoing.Reaction.
type reactionSupport interface {
	SendsReactions(cfg channel.Config) bool
}

// checkReaction refuses, before anything is stored, an operator's reaction
// that must reach the customer but cannot. Every reaction on a message that
// is not a private note is also our account's reaction at the provider (the
// store queues it with the reaction): the channel must be able to send
// reactions, the message must have been sent (it needs the provider's id),
// and a reply window, where the channel has one, must be open.
func (s *server) checkReaction(ctx context.Context, p *auth.Principal, messageID string) error {
	m, err := s.Store.GetMessage(ctx, p.WorkspaceID, messageID)
	if err != nil || m.Private {
		return err
	}
	conv, err := s.Store.GetConversation(ctx, p.WorkspaceID, p.User.ID, m.ConversationID)
	if err != nil {
		return err
	}
	ch, err := s.Store.GetChannel(ctx, p.WorkspaceID, conv.ChannelID)
	if inbox.IsCode(err, inbox.NotFound) {
		return inbox.FieldError("This conversation's channel no longer exists, so a reaction cannot reach the customer.", map[string]string{"emoji": "the channel no longer exists"})
	} else if err != nil {
		return err
	}
	cfg := channel.Config{ChannelID: ch.ID, WorkspaceID: ch.WorkspaceID, Kind: ch.Kind, Config: ch.Config}
	ad, ok := s.Channels.Get(ch.Kind)
	if rs, can := ad.(reactionSupport); !ok || (can && !rs.SendsReactions(cfg)) {
		return inbox.FieldError(fmt.Sprintf("This channel (%s) cannot send reactions, so the customer would never see it; reply with a message instead.", ch.Kind),
			map[string]string{"emoji": "reactions are not supported by this channel"})
	}
	if m.ExternalID == "" {
		return inbox.FieldError("This message has no id at the provider yet (it has not been sent), so a reaction cannot reach the customer: react once it is sent.",
			map[string]string{"emoji": "the message has not been sent yet"})
	}
	return reactionWindow(ad.Rules(cfg), conv, s.Now())
}

// reactionWindow refuses a reaction outside the channel's reply window: a
// reaction is a free-form message, which the provider refuses there (a
// template cannot carry one).
func reactionWindow(rules channel.Rules, conv inbox.Conversation, now time.Time) error {
	if rules.ReplyWindow <= 0 || conv.IsGroup {
		return nil
	}
	last := conv.LastInboundAt
	if last != nil && now.Sub(*last) <= rules.ReplyWindow {
		return nil
	}
	why := "The customer has not written on this channel yet"
	if last != nil {
		since := now.Sub(*last)
		ago := fmt.Sprintf("%d hours", int(since.Hours()))
		if since >= 72*time.Hour {
			ago = fmt.Sprintf("%d days", int(since.Hours()/24))
		}
		why = fmt.Sprintf("The customer last wrote %s ago, outside the %d-hour reply window", ago, int(rules.ReplyWindow.Hours()))
	}
	return inbox.FieldError(why+"; a reaction cannot be sent until they write again.", map[string]string{"emoji": "outside the reply window"})
}

// notifySender wakes the outbound workers for a queued reaction when the
// plugged-in sender can (otherwise they find it on their next poll).
func (s *server) notifySender() {
	if n, ok := s.Sender.(interface{ Notify() }); ok {
		n.Notify()
	}
}
