// Package webhook posts simulated provider webhooks with bounded retries,
// the delivery loop every provider simulator shares. Signing and headers
// stay with each simulator; this package only sends and retries.
package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Retry bounds the attempts of Post.
type Retry struct {
	MaxAttempts int           // attempts in all; at least 1
	Backoff     time.Duration // first wait, doubled after each failed attempt; 0 retries at once
	MaxBackoff  time.Duration // cap on the wait; 0 means no cap
}

// Or returns r with each zero or negative field taken from def.
func (r Retry) Or(def Retry) Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = def.MaxAttempts
	}
	if r.Backoff <= 0 {
		r.Backoff = def.Backoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = def.MaxBackoff
	}
	return r
}

// JSONHeader returns the headers of a JSON webhook that carries the one
// header name: value, left out when value is empty.
func JSONHeader(name, value string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if value != "" {
		h.Set(name, value)
	}
	return h
}

// StatusError is a non-2xx answer from the webhook receiver.
type StatusError struct {
	StatusCode int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("webhook answered HTTP %d", e.StatusCode)
}

// drainLimit bounds how much of an answer is read to reuse the connection.
const drainLimit = 1 << 20

// Post sends body to url with header, retrying network errors and non-2xx
// answers (reported as *StatusError) with doubling backoff until
// opts.MaxAttempts attempts were made. It returns the attempts made and the
// last error, nil once a 2xx answer arrived; ctx ending during a wait
// returns ctx.Err() as is. When no request can be built (a bad url) it
// returns 0 attempts and that error. A nil client has a 10 s timeout.
func Post(ctx context.Context, client *http.Client, url string, header http.Header, body []byte, opts Retry) (int, error) {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	attempts := max(opts.MaxAttempts, 1)
	wait := opts.Backoff
	var last error
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return attempt - 1, err // only ever on the first attempt: the url is the same each time
		}
		req.Header = header.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return attempt, nil
			}
			last = &StatusError{StatusCode: resp.StatusCode}
		} else {
			last = err
		}
		if attempt >= attempts {
			return attempt, last
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return attempt, ctx.Err()
			case <-t.C:
			}
		}
		wait *= 2
		if opts.MaxBackoff > 0 && wait > opts.MaxBackoff {
			wait = opts.MaxBackoff
		}
	}
}

// Failed is the error a simulator's Deliver returns for Post's n and err:
// nil on success; err as is when no request could be built (n == 0) or ctx
// ended during a wait; else fmt.Errorf(format, n, err), format taking the
// attempts (%d) and the last error (%w).
func Failed(ctx context.Context, n int, err error, format string) error {
	if err == nil || n == 0 || err == ctx.Err() {
		return err
	}
	return fmt.Errorf(format, n, err)
}
