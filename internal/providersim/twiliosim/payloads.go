package twiliosim

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/parleyhq/parley/internal/providersim/webhook"
)

// MediaItem is one inbound MMS file.
type MediaItem struct {
	URL         string
	ContentType string
}

// Inbound describes an inbound SMS/MMS.
type Inbound struct {
	AccountSid string
	MessageSid string // SM… / MM…; generated when empty
	From, To   string
	Body       string
	Media      []MediaItem
}

// InboundParams builds the form Twilio posts for an inbound message.
func InboundParams(in Inbound) url.Values {
	sid := in.MessageSid
	if sid == "" {
		sid = "SM" + randHex(16)
		if len(in.Media) > 0 {
			sid = "MM" + randHex(16)
		}
	}
	v := url.Values{}
	v.Set("ToCountry", "US")
	v.Set("ToState", "CA")
	v.Set("SmsMessageSid", sid)
	v.Set("NumMedia", strconv.Itoa(len(in.Media)))
	v.Set("ToCity", "")
	v.Set("FromZip", "94105")
	v.Set("SmsSid", sid)
	v.Set("FromState", "CA")
	v.Set("SmsStatus", "received")
	v.Set("FromCity", "SAN FRANCISCO")
	v.Set("Body", in.Body)
	v.Set("FromCountry", "US")
	v.Set("To", in.To)
	v.Set("ToZip", "")
	v.Set("NumSegments", "1")
	v.Set("MessageSid", sid)
	v.Set("AccountSid", in.AccountSid)
	v.Set("From", in.From)
	v.Set("ApiVersion", "2010-04-01")
	for i, m := range in.Media {
		v.Set("MediaUrl"+strconv.Itoa(i), m.URL)
		v.Set("MediaContentType"+strconv.Itoa(i), m.ContentType)
	}
	return v
}

// StatusParams builds a status callback form (customer = To).
func StatusParams(accountSid, messageSid, from, to, status, errorCode string) url.Values {
	v := url.Values{}
	v.Set("SmsSid", messageSid)
	v.Set("SmsStatus", status)
	v.Set("MessageStatus", status)
	v.Set("To", to)
	v.Set("MessageSid", messageSid)
	v.Set("AccountSid", accountSid)
	v.Set("From", from)
	v.Set("ApiVersion", "2010-04-01")
	if errorCode != "" {
		v.Set("ErrorCode", errorCode)
	}
	return v
}

// DeliverOptions bound the retries of Deliver.
type DeliverOptions struct {
	Client      *http.Client
	MaxAttempts int           // default 2 (Twilio retries once on connection failure)
	Backoff     time.Duration // default 50ms, doubled, capped at 2s
}

// Deliver POSTs params to url, signed with X-Twilio-Signature over url+params,
// retrying non-2xx answers and network errors with bounded backoff.
func Deliver(ctx context.Context, url, authToken string, params url.Values) error {
	return DeliverWith(ctx, DeliverOptions{}, url, authToken, params)
}

// DeliverWith is Deliver with explicit options.
func DeliverWith(ctx context.Context, o DeliverOptions, target, authToken string, params url.Values) error {
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	r := webhook.Retry{MaxAttempts: o.MaxAttempts, Backoff: o.Backoff}.
		Or(webhook.Retry{MaxAttempts: 2, Backoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second})
	n, err := webhook.Post(ctx, client, target, Headers(authToken, target, params), []byte(params.Encode()), r)
	return webhook.Failed(ctx, n, err, "twiliosim: delivery failed after %d attempts (error 11200): %w")
}

// Headers returns the headers Twilio sends with a form POST of params to
// target: the form content type, its User-Agent and X-Twilio-Signature.
func Headers(authToken, target string, params url.Values) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("User-Agent", "TwilioProxy/1.1")
	h.Set("X-Twilio-Signature", Sign(authToken, target, params))
	return h
}
