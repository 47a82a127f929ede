package metasim

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/parleyhq/parley/internal/providersim/webhook"
)

// Deliverer posts signed webhooks and retries non-2xx answers with
// exponential backoff, like Meta (which keeps trying for days; here the
// attempts are bounded).
type Deliverer struct {
	Client      *http.Client  // http.DefaultClient-like when nil (10 s timeout)
	MaxAttempts int           // default 5
	Backoff     time.Duration // first wait, doubled each retry; default 100 ms
	MaxBackoff  time.Duration // default 5 s
}

// Headers returns the headers Meta sends with body.
func Headers(appSecret string, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "facebookexternalua")
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write(body)
	h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	m1 := hmac.New(sha1.New, []byte(appSecret))
	m1.Write(body)
	h.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(m1.Sum(nil)))
	return h
}

// Deliver posts body to url signed with appSecret. It returns the number of
// attempts made and the last error (nil once a 2xx answer arrived).
func (d Deliverer) Deliver(ctx context.Context, url, appSecret string, body []byte) (int, error) {
	client := d.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	r := webhook.Retry{MaxAttempts: d.MaxAttempts, Backoff: d.Backoff, MaxBackoff: d.MaxBackoff}.
		Or(webhook.Retry{MaxAttempts: 5, Backoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second})
	n, err := webhook.Post(ctx, client, url, Headers(appSecret, body), body, r)
	n = max(n, 1) // a request that could not be built counts as one attempt
	if se, ok := errors.AsType[*webhook.StatusError](err); ok {
		err = fmt.Errorf("metasim: webhook answered %d", se.StatusCode)
	}
	return n, err
}

// Deliver posts body with the default Deliverer.
func Deliver(ctx context.Context, webhookURL, appSecret string, body []byte) error {
	_, err := Deliverer{}.Deliver(ctx, webhookURL, appSecret, body)
	return err
}
