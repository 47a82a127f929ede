package metasim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"
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
	attempts := d.MaxAttempts
	if attempts <= 0 {
		attempts = 5
	}
	wait := d.Backoff
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	maxWait := d.MaxBackoff
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	var lastErr error
	for i := 1; i <= attempts; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return i, err
		}
		req.Header = Headers(appSecret, body)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
				return i, nil
			}
			lastErr = fmt.Errorf("metasim: webhook answered %d", resp.StatusCode)
		} else {
			lastErr = err
		}
		if i == attempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return i, ctx.Err()
		case <-t.C:
		}
		wait *= 2
		if wait > maxWait {
			wait = maxWait
		}
	}
	return attempts, lastErr
}

// Deliver posts body with the default Deliverer.
func Deliver(ctx context.Context, webhookURL, appSecret string, body []byte) error {
	_, err := Deliverer{}.Deliver(ctx, webhookURL, appSecret, body)
	return err
}
