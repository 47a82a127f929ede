package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/httpapi/apitest"
	"github.com/parleyhq/parley/internal/inbox"
)

func TestWebSocketThroughAPI(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	var snap inbox.Snapshot
	e.Owner.MustDo("GET", e.WS("/sync/snapshot"), nil, 200, &snap)
	bearer := e.Token(e.Owner, e.Workspace.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.URL, "http") + e.WS("/ws?since="+snap.Cursor)

	// Unauthenticated upgrades are refused by the API layer.
	if _, resp, err := websocket.Dial(ctx, url, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous dial: %v", err)
	}
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"parley.v1", "bearer." + bearer.Token}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	read := func() map[string]any {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if hello := read(); hello["type"] != "hello" || hello["user_id"] != e.OwnerUser.ID {
		t.Fatalf("hello = %v", hello)
	}
	var contact inbox.Contact
	bearer.MustDo("POST", e.WS("/contacts"), map[string]string{"name": "Live"}, 201, &contact)
	for {
		m := read()
		if m["type"] == "change" && m["entity"] == "contact" && m["id"] == contact.ID {
			break
		}
	}
	var v httpapi.ViewersResponse
	e.Owner.MustDo("GET", e.WS("/conversations/"+seed(t, e, e.Owner, e.Workspace.ID, "w").conversation+"/viewers"), nil, 200, &v)
	if v.UserIDs == nil {
		t.Fatal("viewers is null")
	}
}
