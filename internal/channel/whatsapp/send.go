package whatsapp

import (
	"context"

	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/meta"
	"github.com/parleyhq/parley/internal/inbox"
)

type sendAnswer struct {
	Messages []struct {
		ID string `json:"id"`
	} `json:"messages"`
}

// isPhone reports whether to is a wa_id/phone (digits, optional +) rather
// than a business-scoped user id.
func isPhone(to string) bool { return isDigits(strings.TrimPrefix(to, "+")) }

// mediaType maps an attachment kind to the Cloud API message type.
func mediaType(a channel.OutMedia) string {
	switch a.Kind {
	case inbox.KindImage:
		return "image"
	case inbox.KindVideo:
		return "video"
	case inbox.KindAudio, inbox.KindVoice:
		return "audio"
	case inbox.KindSticker:
		return "sticker"
	case inbox.KindDocument:
		return "document"
	}
	switch {
	case strings.HasPrefix(a.MimeType, "image/webp"):
		return "sticker"
	case strings.HasPrefix(a.MimeType, "image/"):
		return "image"
	case strings.HasPrefix(a.MimeType, "video/"):
		return "video"
	case strings.HasPrefix(a.MimeType, "audio/"):
		return "audio"
	}
	return "document"
}

// Bodies builds the Cloud API request bodies for out, in sending order.
func Bodies(out channel.Outgoing) ([]map[string]any, error) {
	if out.To == "" {
		return nil, &channel.SendError{Code: "invalid", Reason: "no recipient"}
	}
	base := func() map[string]any {
		b := map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual"}
		if isPhone(out.To) {
			b["to"] = strings.TrimPrefix(out.To, "+")
		} else {
			b["recipient"] = out.To // business-scoped user id
		}
		return b
	}
	if out.Reaction != nil {
		b := base()
		b["type"] = "reaction"
		b["reaction"] = map[string]string{"message_id": out.Reaction.TargetID, "emoji": out.Reaction.Emoji}
		return []map[string]any{b}, nil
	}
	if out.Template != nil {
		t := out.Template
		if t.Name == "" {
			return nil, &channel.SendError{Code: "invalid", Reason: "template name is required"}
		}
		lang := t.Language
		if lang == "" {
			lang = "en_US"
		}
		tpl := map[string]any{"name": t.Name, "language": map[string]string{"code": lang}}
		if len(t.Params) > 0 {
			params := make([]map[string]string, 0, len(t.Params))
			for _, p := range t.Params {
				params = append(params, map[string]string{"type": "text", "text": p})
			}
			tpl["components"] = []map[string]any{{"type": "body", "parameters": params}}
		}
		b := base()
		b["type"] = "template"
		b["template"] = tpl
		if out.ReplyToID != "" {
			b["context"] = map[string]string{"message_id": out.ReplyToID}
		}
		return []map[string]any{b}, nil
	}
	if n := utf8.RuneCountInString(out.Text); n > MaxTextLen {
		return nil, &channel.SendError{Code: "invalid", Reason: "text longer than 4096 characters"}
	}
	var bodies []map[string]any
	text := out.Text
	for i, a := range out.Attachments {
		if a.URL == "" {
			return nil, &channel.SendError{Code: "invalid", Reason: "attachment has no URL the provider can fetch"}
		}
		typ := mediaType(a)
		obj := map[string]any{"link": a.URL}
		if typ == "document" && a.Filename != "" {
			obj["filename"] = a.Filename
		}
		// The text rides as the caption of a single captionable attachment.
		if i == 0 && len(out.Attachments) == 1 && text != "" &&
			(typ == "image" || typ == "video" || typ == "document") &&
			utf8.RuneCountInString(text) <= MaxCaptionLen {
			obj["caption"] = text
			text = ""
		}
		b := base()
		b["type"] = typ
		b[typ] = obj
		bodies = append(bodies, b)
	}
	if text != "" {
		b := base()
		b["type"] = "text"
		b["text"] = map[string]any{"body": text, "preview_url": strings.Contains(text, "https://") || strings.Contains(text, "http://")}
		bodies = append([]map[string]any{b}, bodies...)
	}
	if len(bodies) == 0 {
		return nil, &channel.SendError{Code: "invalid", Reason: "nothing to send"}
	}
	if out.ReplyToID != "" {
		bodies[0]["context"] = map[string]string{"message_id": out.ReplyToID}
	}
	return bodies, nil
}

// Send posts out to {base}/{phone_number_id}/messages. Several bodies (text
// plus attachments) are sent in order; the first id is ExternalID.
func Send(ctx context.Context, cl *meta.Client, phoneNumberID string, out channel.Outgoing) (channel.SendResult, error) {
	if phoneNumberID == "" {
		return channel.SendResult{}, &channel.SendError{Code: "config", Reason: "phone_number_id is not configured"}
	}
	bodies, err := Bodies(out)
	if err != nil {
		return channel.SendResult{}, err
	}
	endpoint := cl.URL(url.PathEscape(phoneNumberID) + "/messages")
	var res channel.SendResult
	for i, b := range bodies {
		var ans sendAnswer
		if err := cl.Do(ctx, http.MethodPost, endpoint, b, &ans); err != nil {
			if i == 0 {
				return channel.SendResult{}, err
			}
			res.Status = inbox.MsgSent
			return res, meta.PartialSend(err)
		}
		if len(ans.Messages) == 0 || ans.Messages[0].ID == "" {
			return res, &channel.SendError{Code: "bad_response", Reason: "Graph API answer has no messages[0].id", HTTPStatus: http.StatusOK}
		}
		id := ans.Messages[0].ID
		if res.ExternalID == "" {
			res.ExternalID = id
		}
		res.ExternalIDs = append(res.ExternalIDs, id)
	}
	res.Status = inbox.MsgSent
	return res, nil
}

// MediaInfo is the Graph answer for a media id.
type MediaInfo struct {
	URL      string   `json:"url"`
	MimeType string   `json:"mime_type"`
	SHA256   string   `json:"sha256"`
	FileSize meta.Num `json:"file_size"`
	ID       string   `json:"id"`
}

// FetchMedia resolves ref (a media id) and downloads the file, both with the
// Bearer token. The caller closes the body.
func FetchMedia(ctx context.Context, cl *meta.Client, ref string) (io.ReadCloser, string, error) {
	if ref == "" {
		return nil, "", inbox.Errorf(inbox.NotFound, "empty media reference")
	}
	var info MediaInfo
	if err := cl.Do(ctx, http.MethodGet, cl.URL(url.PathEscape(ref)), nil, &info); err != nil {
		return nil, "", err
	}
	if info.URL == "" {
		return nil, "", inbox.Errorf(inbox.NotFound, "media %s has no download URL", ref)
	}
	body, ct, err := cl.Download(ctx, info.URL)
	if err != nil {
		return nil, "", err
	}
	if info.MimeType != "" {
		ct = info.MimeType
	}
	return body, ct, nil
}
