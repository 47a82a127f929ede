package outbound

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/telegram"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/store"
)

// TestPartialSendKeepsSentPartIDs: a Telegram text long enough for two
// sendMessage calls whose second is refused fails the message for good
// (no retry would send part one again) and keeps part one's id on it, so
// that part one's later status and echo find the message.
func TestPartialSendKeepsSentPartIDs(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var texts []string // sendMessage texts, in order
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ChatID int64  `json:"chat_id"`
			Text   string `json:"text"`
		}
		data, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(data, &body)
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/bot123:tg-token/sendMessage" || body.ChatID != 4242 {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"ok":false,"error_code":404,"description":"Not Found"}`)
			return
		}
		texts = append(texts, body.Text)
		if len(texts) == 1 {
			io.WriteString(w, `{"ok":true,"result":{"message_id":101,"from":{"id":123,"is_bot":true,"first_name":"Shop"},"chat":{"id":4242,"type":"private"},"date":1767322000,"text":"part one"}}`)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}`)
	}))
	t.Cleanup(srv.Close)

	e := newRxEnv(t, telegram.New(), map[string]any{"api_base_url": srv.URL}, map[string]string{"bot_token": "123:tg-token"},
		channel.Event{ExternalID: "4242:7", ChatID: "4242", Sender: channel.Party{Identifier: "4242", Name: "Li"}}, nil)
	text := strings.Repeat("word ", 1000) // 5000 characters: two parts
	m, err := e.db.CreateMessage(ctx, e.ws, inbox.NewMessage{ConversationID: e.msg.ConversationID, Sender: rxAnn, Text: text, Outbox: true})
	if err != nil {
		t.Fatal(err)
	}
	e.w.Notify()
	got := waitFailed(t, e.db, e.ws, m.ID)
	if !strings.Contains(got.Error, "partially sent") || !strings.Contains(got.Error, "message is too long") {
		t.Fatalf("error %q, want the partial send's reason", got.Error)
	}
	if got.ExternalID != "4242:101" {
		t.Fatalf("external_id %q, want part one's id 4242:101", got.ExternalID)
	}
	if st, attempts, _, err := e.db.OutboxState(ctx, m.ID); err != nil || st != store.OutboxFailed || attempts != 1 {
		t.Fatalf("outbox %v %s %d, want failed after one attempt", err, st, attempts)
	}
	time.Sleep(50 * time.Millisecond) // a retry, if one were scheduled, would show now
	mu.Lock()
	sent := append([]string(nil), texts...)
	mu.Unlock()
	if len(sent) != 2 || strings.Count(sent[0]+sent[1], "word") != 1000 {
		t.Fatalf("%d sendMessage calls, want part one once and part two once", len(sent))
	}

	// Part one's later delivery status finds the message; failed is
	// terminal, so the message stays failed and records the delivery.
	res, err := e.db.ApplyInbound(ctx, store.InboundEntry{ID: "e2", ReceivedAt: time.Now()}, e.ch,
		[]channel.Event{{Type: channel.EventStatus, TargetID: "4242:101", Status: inbox.MsgDelivered, Timestamp: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pending != 0 || res.Unchanged != 1 {
		t.Fatalf("status for part one: %+v, want it applied to the message (not kept for an unknown target)", res)
	}
	if after := waitFailed(t, e.db, e.ws, m.ID); after.ExternalID != "4242:101" || after.Error != got.Error {
		t.Fatalf("after the status %+v", after)
	}
	// Its echo is our message, not a new one.
	res, err = e.db.ApplyInbound(ctx, store.InboundEntry{ID: "e3", ReceivedAt: time.Now()}, e.ch, []channel.Event{{Type: channel.EventMessage,
		ExternalID: "4242:101", ChatID: "4242", Direction: "outbound", Kind: inbox.KindText, Text: sent[0], Sender: channel.Party{Identifier: "123"}}})
	if err != nil || res.NewMessages != 0 {
		t.Fatalf("echo of part one: %v %+v, want no new message", err, res)
	}
}

func waitFailed(t *testing.T, db *store.DB, ws, id string) inbox.Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := db.GetMessage(context.Background(), ws, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status == inbox.MsgFailed || m.Status == inbox.MsgSent {
			if m.Status != inbox.MsgFailed {
				t.Fatalf("message %+v, want failed", m)
			}
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message status %s, never failed", m.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
