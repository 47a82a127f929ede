package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPost(t *testing.T) {
	tests := []struct {
		name     string
		failures int32 // answers of 503 before a 200
		attempts int
		wantN    int
		wantCode int // 0: success expected
	}{
		{"first try", 0, 3, 1, 0},
		{"heals on retry", 2, 3, 3, 0},
		{"gives up", 5, 3, 3, http.StatusServiceUnavailable},
		{"zero attempts means one", 1, 0, 1, http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.Header.Get("X-Sig") != "abc" {
					t.Errorf("got %s with X-Sig %q", r.Method, r.Header.Get("X-Sig"))
				}
				if calls.Add(1) <= tc.failures {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			}))
			defer srv.Close()
			h := http.Header{"X-Sig": {"abc"}}
			n, err := Post(context.Background(), srv.Client(), srv.URL, h, []byte("{}"),
				Retry{MaxAttempts: tc.attempts, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
			if n != tc.wantN || int(calls.Load()) != tc.wantN {
				t.Fatalf("attempts = %d, server saw %d, want %d", n, calls.Load(), tc.wantN)
			}
			se, ok := errors.AsType[*StatusError](err)
			switch {
			case tc.wantCode == 0 && err != nil:
				t.Fatalf("err = %v", err)
			case tc.wantCode != 0 && (!ok || se.StatusCode != tc.wantCode):
				t.Fatalf("err = %v, want status %d", err, tc.wantCode)
			}
			if h.Get("X-Sig") != "abc" || len(h) != 1 {
				t.Fatalf("caller's header changed: %v", h)
			}
		})
	}
}

func TestPostBadURL(t *testing.T) {
	n, err := Post(context.Background(), nil, "http://[::1", nil, nil, Retry{MaxAttempts: 3})
	if n != 0 || err == nil {
		t.Fatalf("n = %d, err = %v; want 0 attempts and an error", n, err)
	}
}

func TestPostContextEndsDuringWait(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	n, err := Post(ctx, srv.Client(), srv.URL, nil, nil, Retry{MaxAttempts: 10, Backoff: time.Hour})
	if n != 1 || err != context.Canceled {
		t.Fatalf("n = %d, err = %v; want 1 attempt and context.Canceled as is", n, err)
	}
}

func TestRetryOr(t *testing.T) {
	def := Retry{MaxAttempts: 5, Backoff: time.Second, MaxBackoff: time.Minute}
	tests := []struct {
		in, want Retry
	}{
		{Retry{}, def},
		{Retry{MaxAttempts: -1, Backoff: -time.Second}, def},
		{Retry{MaxAttempts: 2}, Retry{MaxAttempts: 2, Backoff: time.Second, MaxBackoff: time.Minute}},
		{Retry{MaxAttempts: 1, Backoff: time.Millisecond, MaxBackoff: time.Hour}, Retry{MaxAttempts: 1, Backoff: time.Millisecond, MaxBackoff: time.Hour}},
	}
	for _, tc := range tests {
		if got := tc.in.Or(def); got != tc.want {
			t.Errorf("%+v.Or(def) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestFailed(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	boom := &StatusError{StatusCode: 500}
	const format = "sim: failed after %d attempts: %w"
	tests := []struct {
		name    string
		ctx     context.Context
		n       int
		err     error
		want    string // "" means nil
		wrapped bool
	}{
		{"success", context.Background(), 1, nil, "", false},
		{"gave up", context.Background(), 3, boom, "sim: failed after 3 attempts: webhook answered HTTP 500", true},
		{"bad url", context.Background(), 0, boom, "webhook answered HTTP 500", false},
		{"ctx ended in a wait", ended, 2, ended.Err(), "context canceled", false},
		{"failed on the last attempt as ctx ended", ended, 2, boom, "sim: failed after 2 attempts: webhook answered HTTP 500", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Failed(tc.ctx, tc.n, tc.err, format)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want || !errors.Is(err, tc.err) || (err != tc.err) != tc.wrapped {
				t.Fatalf("err = %v, want %q (wrapped %v)", err, tc.want, tc.wrapped)
			}
		})
	}
}

func TestJSONHeader(t *testing.T) {
	h := JSONHeader("X-Token", "s3")
	if h.Get("Content-Type") != "application/json" || h.Get("X-Token") != "s3" || len(h) != 2 {
		t.Fatalf("with value: %v", h)
	}
	h = JSONHeader("X-Token", "")
	if h.Get("Content-Type") != "application/json" || len(h) != 1 {
		t.Fatalf("without value: %v", h)
	}
}
