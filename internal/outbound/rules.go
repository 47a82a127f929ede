// Package outbound is Parley's sending pipeline: the checks a send must pass
// before it is queued (CheckRules), and the outbox workers that deliver
// queued messages through the channel adapters with retries and backoff.
package outbound

import (
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// Draft is a message about to be queued, as far as the rules care.
type Draft struct {
	Text        string
	Template    bool
	Attachments []DraftMedia
}

// DraftMedia is one file of a draft.
type DraftMedia struct {
	Kind     string
	MimeType string
	Filename string
	Size     int64
}

func ago(d time.Duration) string {
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d < 72*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func window(d time.Duration) string {
	if d%(24*time.Hour) == 0 && d >= 48*time.Hour {
		return fmt.Sprintf("%d-day", int(d.Hours()/24))
	}
	return fmt.Sprintf("%d-hour", int(d.Hours()))
}

// NeedsHumanAgent reports whether a free-form send is past the reply window
// but inside the channel's HUMAN_AGENT tag window (Meta), so the adapter must
// tag it.
func NeedsHumanAgent(rules channel.Rules, state channel.ConversationState) bool {
	if rules.ReplyWindow <= 0 || rules.TagWindow <= 0 || state.IsGroup || state.LastInboundAt == nil {
		return false
	}
	since := state.Now.Sub(*state.LastInboundAt)
	return since > rules.ReplyWindow && since <= rules.TagWindow
}

// CheckRules says whether the channel can take msg now. A refusal is an
// inbox Invalid error (400) whose message says why and what to do instead.
func CheckRules(rules channel.Rules, state channel.ConversationState, msg Draft) error {
	if state.Now.IsZero() {
		state.Now = time.Now()
	}
	if strings.TrimSpace(msg.Text) == "" && len(msg.Attachments) == 0 && !msg.Template {
		return inbox.FieldError("The message is empty: write some text or attach a file.", map[string]string{"text": "is empty"})
	}
	if msg.Template && !rules.Templates {
		return inbox.FieldError("This channel does not support templates; send a normal message instead.", map[string]string{"template": "not supported by this channel"})
	}
	// Reply windows (templates are allowed at any time; group chats have none).
	if !msg.Template && rules.ReplyWindow > 0 && !state.IsGroup {
		var since time.Duration
		outside := state.LastInboundAt == nil
		if !outside {
			since = state.Now.Sub(*state.LastInboundAt)
			outside = since > rules.ReplyWindow
		}
		if outside && !NeedsHumanAgent(rules, state) {
			var why string
			if state.LastInboundAt == nil {
				why = "The customer has not written on this channel yet"
			} else {
				why = fmt.Sprintf("The customer last wrote %s ago, outside the %s reply window", ago(since), window(rules.ReplyWindow))
			}
			switch {
			case rules.Templates:
				return inbox.FieldError(why+"; send a template instead.", map[string]string{"text": "outside the reply window: send a template"})
			case rules.TagWindow > 0:
				return inbox.FieldError(fmt.Sprintf("%s (and past the %s human-agent window); wait for the customer to write again or reach them on another channel.", why, window(rules.TagWindow)),
					map[string]string{"text": "outside the reply window"})
			default:
				return inbox.FieldError(why+"; wait for the customer to write again or reach them on another channel.", map[string]string{"text": "outside the reply window"})
			}
		}
	}
	if len(msg.Attachments) > 0 {
		if !rules.Media {
			return inbox.FieldError("This channel cannot carry attachments; send text only (for example a link to the file).", map[string]string{"attachment_ids": "not supported by this channel"})
		}
		if err := checkMedia(rules, msg.Attachments); err != nil {
			return err
		}
	}
	if rules.MaxTextLen > 0 && !rules.SplitLongText && !msg.Template {
		unit := rules.TextLenUnit
		if n := channel.TextLen(msg.Text, unit); n > rules.MaxTextLen {
			name := map[string]string{"bytes": "bytes", "utf16": "characters"}[unit]
			if name == "" {
				name = "characters"
			}
			return inbox.FieldError(fmt.Sprintf("The text is %d %s; this channel allows at most %d. Shorten it or send it as several messages.", n, name, rules.MaxTextLen),
				map[string]string{"text": fmt.Sprintf("too long (%d/%d)", n, rules.MaxTextLen)})
		}
	}
	if rules.Segments != nil && rules.MaxSegments > 0 && !msg.Template {
		if enc, n := rules.Segments(msg.Text); n > rules.MaxSegments {
			return inbox.FieldError(fmt.Sprintf("The text needs %d SMS parts (%s); this channel allows at most %d. Shorten it, or avoid characters outside the GSM alphabet (emoji, Cyrillic…), which make every part hold 67 characters instead of 153.", n, enc, rules.MaxSegments),
				map[string]string{"text": fmt.Sprintf("too many SMS parts (%d/%d)", n, rules.MaxSegments)})
		}
	}
	return nil
}

// checkMedia refuses files over the channel's cap for their kind, and
// messages over its per-message count or total size.
func checkMedia(rules channel.Rules, files []DraftMedia) error {
	if rules.MaxAttachments > 0 && len(files) > rules.MaxAttachments {
		return inbox.FieldError(fmt.Sprintf("This channel carries at most %d files per message; send the other %d in another message.", rules.MaxAttachments, len(files)-rules.MaxAttachments),
			map[string]string{"attachment_ids": fmt.Sprintf("too many files (%d/%d)", len(files), rules.MaxAttachments)})
	}
	var total int64
	for _, m := range files {
		total += m.Size
		limit := rules.MediaLimit(m.Kind)
		if limit <= 0 || m.Size <= limit {
			continue
		}
		noun := kindNoun(m.Kind)
		what := "a smaller file or a link"
		// A file refused as an image may pass as a document (WhatsApp: 5 MB vs 100 MB).
		if doc := rules.MediaLimit(inbox.KindDocument); m.Kind != inbox.KindDocument && (doc <= 0 || m.Size <= doc) {
			what = "it as a document, a smaller file or a link"
		}
		return inbox.FieldError(fmt.Sprintf("%q is %s; this channel takes %s up to %s. Send %s.", m.Filename, humanSize(m.Size), noun, humanSize(limit), what),
			map[string]string{"attachment_ids": fmt.Sprintf("%s too large for this channel (%s, at most %s)", kindName(m.Kind), humanSize(m.Size), humanSize(limit))})
	}
	if rules.MaxMediaTotal > 0 && total > rules.MaxMediaTotal {
		return inbox.FieldError(fmt.Sprintf("The files add up to %s; this channel takes at most %s per message. Send fewer or smaller files, or links.", humanSize(total), humanSize(rules.MaxMediaTotal)),
			map[string]string{"attachment_ids": fmt.Sprintf("files too large together for this channel (%s, at most %s)", humanSize(total), humanSize(rules.MaxMediaTotal))})
	}
	return nil
}

// kindName is an attachment kind as a refusal names it.
func kindName(kind string) string {
	if kind == "" {
		return "file"
	}
	return kind
}

// kindNoun is the plural a refusal uses for files of kind.
func kindNoun(kind string) string {
	switch kind {
	case inbox.KindImage, inbox.KindVideo, inbox.KindDocument, inbox.KindSticker:
		return kind + "s"
	case inbox.KindAudio:
		return "audio files"
	case inbox.KindVoice:
		return "voice notes"
	}
	return "files"
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
