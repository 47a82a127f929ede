package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// An authentication failure on dial is final; the token travels as the
// bearer subprotocol next to parley.v1.
func TestDialAuth(t *testing.T) {
	var gotProtos atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotProtos.Store(r.Header.Get("Sec-WebSocket-Protocol"))
		if !strings.Contains(r.Header.Get("Sec-WebSocket-Protocol"), "bearer.good") {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"parley.v1"}})
		if err != nil {
			return
		}
		if r.URL.Query().Get("since") != "7" {
			_ = c.Close(websocket.StatusPolicyViolation, "bad since "+r.URL.Query().Get("since"))
			return
		}
		_ = c.Write(r.Context(), websocket.MessageText, []byte(`{"type":"change","seq":8,"entity":"label","op":"upsert","id":"l1","data":{"id":"l1"}}`))
		_ = c.Write(r.Context(), websocket.MessageText, []byte(`{"type":"change","seq":8,"entity":"label","op":"upsert","id":"l1","data":{"id":"l1"}}`))
		_ = c.Write(r.Context(), websocket.MessageText, []byte(`{"type":"change","seq":9,"entity":"label","op":"delete","id":"l1","data":null}`))
		_, _, _ = c.Read(context.Background())
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"

	_, err := Dial(context.Background(), url, Options{Token: "bad"})
	var fe *fatalError
	if !errors.As(err, &fe) {
		t.Fatalf("want a fatal auth error, got %v", err)
	}
	st := NewState()
	c, err := Dial(context.Background(), url, Options{Token: "good", Since: "7", State: st})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := gotProtos.Load(); p != "parley.v1,bearer.good" {
		t.Fatalf("protocols %q", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, want := range []int64{8, 9} { // the duplicate 8 is dropped
		f, err := c.Next(ctx)
		if err != nil || f.Seq != want {
			t.Fatalf("want seq %d, got %+v %v", want, f, err)
		}
	}
	if c.Cursor() != "9" || !st.Deleted("label", "l1") {
		t.Fatalf("cursor %s", c.Cursor())
	}
}
