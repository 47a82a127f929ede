package meta

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// MessagingAttachmentType maps an inbox attachment kind to a Send API
// attachment type (image, video, audio, file).
func MessagingAttachmentType(kind, mime string) string {
	switch kind {
	case inbox.KindImage, inbox.KindSticker:
		return "image"
	case inbox.KindVideo:
		return "video"
	case inbox.KindAudio, inbox.KindVoice:
		return "audio"
	}
	switch {
	case strings.HasPrefix(mime, "image/"):
		return "image"
	case strings.HasPrefix(mime, "video/"):
		return "video"
	case strings.HasPrefix(mime, "audio/"):
		return "audio"
	}
	return "file"
}

type sendAnswer struct {
	RecipientID string `json:"recipient_id"`
	MessageID   string `json:"message_id"`
}

// Kinds of the Messenger-style Send API: they send no reactions.
const (
	kindMessenger = "messenger"
	kindInstagram = "instagram"
)

// SendsReactions reports whether a Meta channel can send our reactions:
// WhatsApp can (providers.md §1: type "reaction"); the protocol reference
// documents no reaction send for Messenger (§2) nor Instagram (§3, which
// lists only the reactions they report), so those refuse them before
// anything is stored. The API asks this of any adapter that answers it.
func (Common) SendsReactions(cfg channel.Config) bool {
	return cfg.Kind != kindMessenger && cfg.Kind != kindInstagram
}

// SendMessaging sends out through the Messenger-style Send API at endpoint
// ({base}/me/messages or {base}/{id}/messages). Attachments go first (one
// request each, Meta takes one per message), then the text. A reaction is
// refused for good, code "unsupported" (see Common.SendsReactions). Outside
// the 24 h window HumanAgent sends with messaging_type MESSAGE_TAG and tag
// HUMAN_AGENT.
func SendMessaging(ctx context.Context, cl *Client, endpoint string, out channel.Outgoing) (channel.SendResult, error) {
	if out.Reaction != nil {
		return channel.SendResult{}, &channel.SendError{Code: "unsupported", Reason: "this channel cannot send reactions (its send API documents none)"}
	}
	if out.To == "" {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "no recipient"}
	}
	recipient := map[string]string{"id": out.To}
	var messages []map[string]any
	for _, a := range out.Attachments {
		if a.URL == "" {
			return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "attachment has no URL the provider can fetch"}
		}
		messages = append(messages, map[string]any{"attachment": map[string]any{
			"type":    MessagingAttachmentType(a.Kind, a.MimeType),
			"payload": map[string]any{"url": a.URL, "is_reusable": false},
		}})
	}
	if out.Text != "" {
		messages = append(messages, map[string]any{"text": out.Text})
	}
	if len(messages) == 0 {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "nothing to send"}
	}
	if out.ReplyToID != "" {
		messages[0]["reply_to"] = map[string]string{"mid": out.ReplyToID}
	}
	var res channel.SendResult
	for i, msg := range messages {
		body := map[string]any{"recipient": recipient, "message": msg, "messaging_type": "RESPONSE"}
		if out.HumanAgent {
			body["messaging_type"] = "MESSAGE_TAG"
			body["tag"] = "HUMAN_AGENT"
		}
		var ans sendAnswer
		if err := cl.Do(ctx, http.MethodPost, endpoint, body, &ans); err != nil {
			if i == 0 {
				return channel.SendResult{}, err
			}
			res.Status = inbox.MsgSent
			return res, PartialSend(err)
		}
		if res.ExternalID == "" {
			res.ExternalID = ans.MessageID
		}
		res.ExternalIDs = append(res.ExternalIDs, ans.MessageID)
	}
	res.Status = inbox.MsgSent
	return res, nil
}

// PartialSend is the error of a send of several parts that failed after the
// first part went out: code "partial", so that nobody retries it (a retry
// would duplicate what is out), with the reason of err.
func PartialSend(err error) *channel.SendError {
	reason := err.Error()
	var se *channel.SendError
	if errors.As(err, &se) {
		reason = se.Reason
	}
	return &channel.SendError{Code: "partial", Reason: "partially sent: " + reason}
}

// Profile fetches a user profile: GET {base}/{id}?fields=... with the token.
func (c *Client) Profile(ctx context.Context, id, fields string) (map[string]any, error) {
	var out map[string]any
	err := c.Do(ctx, http.MethodGet, c.URL(id)+"?fields="+fields, nil, &out)
	return out, err
}
