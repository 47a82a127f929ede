package twilio

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

func parseForm(body []byte) (map[string][]string, error) {
	v, err := url.ParseQuery(string(body))
	return v, err
}

func first(p map[string][]string, k string) string {
	if v := p[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// rawJSON is the event's own payload as a JSON object (single values flattened).
func rawJSON(p map[string][]string) []byte {
	flat := make(map[string]any, len(p))
	for k, v := range p {
		if len(v) == 1 {
			flat[k] = v[0]
		} else {
			flat[k] = v
		}
	}
	return jsonOf(flat)
}

// mediaKind maps a content type to an inbox kind.
func mediaKind(ct string) string {
	ct = strings.ToLower(ct)
	switch {
	case strings.HasPrefix(ct, "image/"):
		return inbox.KindImage
	case strings.HasPrefix(ct, "video/"):
		return inbox.KindVideo
	case strings.HasPrefix(ct, "audio/"):
		return inbox.KindAudio
	}
	return inbox.KindDocument
}

func party(number string) channel.Party {
	p := channel.Party{Identifier: number}
	if e164Re.MatchString(number) {
		p.Phone = number
	}
	return p
}

// statusMap maps MessageStatus to inbox statuses ("" = not reported).
var statusMap = map[string]string{
	"sent":        inbox.MsgSent,
	"delivered":   inbox.MsgDelivered,
	"read":        inbox.MsgRead,
	"undelivered": inbox.MsgFailed,
	"failed":      inbox.MsgFailed,
	"canceled":    inbox.MsgFailed,
}

// Parse reads an inbound message or a status callback.
//
// Inbound (no MessageStatus, or received/receiving): EventMessage with
// ExternalID = MessageSid, contact = From, media from MediaUrlN (ProviderRef =
// the URL), zero Timestamp (Twilio sends none: receive time).
// Status callbacks: EventStatus, TargetID = MessageSid, ExternalID =
// MessageSid:MessageStatus; queued/accepted/scheduled/sending are not
// reported (no event), undelivered/failed/canceled → failed with the error
// code and its meaning in Error.
func (a *Adapter) Parse(cfg channel.Config, req channel.Request) ([]channel.Event, error) {
	p, err := parseForm(req.Body)
	if err != nil {
		return nil, inbox.Wrap(inbox.Invalid, err, "twilio webhook body is not form-encoded")
	}
	raw := rawJSON(p)
	sid := first(p, "MessageSid")
	if sid == "" {
		sid = first(p, "SmsSid")
	}
	status := strings.ToLower(first(p, "MessageStatus"))
	if status == "" && first(p, "Body") == "" && first(p, "NumMedia") == "" {
		status = strings.ToLower(first(p, "SmsStatus"))
	}
	if status != "" && status != "received" && status != "receiving" {
		st, ok := statusMap[status]
		if !ok {
			return nil, nil
		}
		ev := channel.Event{
			Type:       channel.EventStatus,
			ExternalID: sid + ":" + status,
			TargetID:   sid,
			ChatID:     first(p, "To"),
			Recipient:  party(first(p, "To")),
			Direction:  "outbound",
			Status:     st,
			Raw:        raw,
		}
		if st == inbox.MsgFailed {
			code := first(p, "ErrorCode")
			msg := first(p, "ErrorMessage")
			if msg == "" {
				msg = ErrorMeaning(code)
			}
			switch {
			case code != "" && msg != "":
				ev.Error = status + ": " + code + " " + msg
			case code != "":
				ev.Error = status + ": error " + code
			default:
				ev.Error = status
			}
		}
		return []channel.Event{ev}, nil
	}

	from := first(p, "From")
	ev := channel.Event{
		Type:       channel.EventMessage,
		ExternalID: sid,
		ChatID:     from,
		Sender:     party(from),
		Direction:  "inbound",
		Kind:       inbox.KindText,
		Text:       first(p, "Body"),
		Raw:        raw,
	}
	n, _ := strconv.Atoi(first(p, "NumMedia"))
	if n > MaxMediaURLs {
		n = MaxMediaURLs
	}
	for i := 0; i < n; i++ {
		u := first(p, "MediaUrl"+strconv.Itoa(i))
		if u == "" {
			continue
		}
		ct := first(p, "MediaContentType"+strconv.Itoa(i))
		ev.Attachments = append(ev.Attachments, channel.Media{Kind: mediaKind(ct), MimeType: ct, ProviderRef: u})
	}
	if len(ev.Attachments) > 0 {
		ev.Kind = ev.Attachments[0].Kind
		ev.Attachments[0].Caption = ev.Text
	}
	if lat, err1 := strconv.ParseFloat(first(p, "Latitude"), 64); err1 == nil {
		if lng, err2 := strconv.ParseFloat(first(p, "Longitude"), 64); err2 == nil {
			ev.Kind = inbox.KindLocation
			ev.Location = &inbox.Location{Latitude: lat, Longitude: lng, Name: first(p, "Label"), Address: first(p, "Address")}
		}
	}
	if sid == "" {
		ev.Kind = inbox.KindUnsupported
		ev.Content = raw
	}
	return []channel.Event{ev}, nil
}
