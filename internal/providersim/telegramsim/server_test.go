package telegramsim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func post(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestServerValidates(t *testing.T) {
	s := New("42:secret")
	srv := httptest.NewServer(s)
	defer srv.Close()
	if st, m := post(t, srv.URL+"/bot42:wrong/sendMessage", map[string]any{"chat_id": 1, "text": "x"}); st != 401 || m["ok"] != false {
		t.Fatal(st, m)
	}
	if st, m := post(t, srv.URL+"/bot42:secret/sendMessage", map[string]any{"chat_id": 1, "text": ""}); st != 400 || m["description"] != "Bad Request: message text is empty" {
		t.Fatal(st, m)
	}
	if st, _ := post(t, srv.URL+"/bot42:secret/sendPhoto", map[string]any{"chat_id": 1, "photo": "https://x/y.jpg", "caption": string(make([]byte, 1025))}); st != 400 {
		t.Fatal(st)
	}
	st, m := post(t, srv.URL+"/bot42:secret/sendMessage", map[string]any{"chat_id": -1001234567890, "text": "hi"})
	res, _ := m["result"].(map[string]any)
	if st != 200 || res["chat"].(map[string]any)["type"] != "supergroup" {
		t.Fatal(st, m)
	}
	s.FailNext(2, 429, 3)
	for i := 0; i < 2; i++ {
		st, m := post(t, srv.URL+"/bot42:secret/sendMessage", map[string]any{"chat_id": 1, "text": "x"})
		if st != 429 || m["parameters"].(map[string]any)["retry_after"] != float64(3) {
			t.Fatal(st, m)
		}
	}
	if st, _ := post(t, srv.URL+"/bot42:secret/sendMessage", map[string]any{"chat_id": 1, "text": "x"}); st != 200 {
		t.Fatal("failures must stop after N")
	}
	if n := len(s.Calls("sendMessage")); n != 5 {
		t.Fatalf("recorded %d", n)
	}
}

func TestDeliverBoundedRetries(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("X-Telegram-Bot-Api-Secret-Token") != "tok" {
			t.Error("missing secret header")
		}
		w.WriteHeader(500)
	}))
	defer srv.Close()
	err := DeliverWith(context.Background(), DeliverOptions{MaxAttempts: 3, Backoff: time.Millisecond}, srv.URL, "tok", []byte(`{}`))
	if err == nil || hits.Load() != 3 {
		t.Fatal(err, hits.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Deliver(ctx, srv.URL, "tok", []byte(`{}`)); err == nil {
		t.Fatal("cancelled context must stop delivery")
	}
}
