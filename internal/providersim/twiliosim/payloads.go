package twiliosim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
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
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 15 * time.Second}
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 2
	}
	if o.Backoff <= 0 {
		o.Backoff = 50 * time.Millisecond
	}
	sig := Sign(authToken, target, params)
	body := params.Encode()
	wait := o.Backoff
	var last error
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", sig)
		req.Header.Set("User-Agent", "TwilioProxy/1.1")
		resp, err := o.Client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			last = fmt.Errorf("webhook answered HTTP %d", resp.StatusCode)
		} else {
			last = err
		}
		if attempt >= o.MaxAttempts {
			return fmt.Errorf("twiliosim: delivery failed after %d attempts (error 11200): %w", attempt, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}
