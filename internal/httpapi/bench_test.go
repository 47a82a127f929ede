package httpapi_test

import (
	"testing"

	"github.com/parleyhq/parley/internal/httpapi/apitest"
)

// BenchmarkAPI measures full HTTP round trips (auth, membership, store, JSON) on SQLite.
func BenchmarkAPI(b *testing.B) {
	e := newEnv(b, apitest.Options{})
	fx := seed(b, e, e.Owner, e.Workspace.ID, "b")
	bearer := e.Token(e.Owner, e.Workspace.ID)
	for _, bc := range []struct{ name, method, path string }{
		{"GetConversation", "GET", e.WS("/conversations/" + fx.conversation)},
		{"ListConversations", "GET", e.WS("/conversations?limit=25")},
		{"Snapshot", "GET", e.WS("/sync/snapshot")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := bearer.With(b)
			for b.Loop() {
				if r := c.Do(bc.method, bc.path, nil); r.Status != 200 {
					b.Fatalf("%d %s", r.Status, r.Body)
				}
			}
		})
	}
	b.Run("CreateNote", func(b *testing.B) {
		c := bearer.With(b)
		for b.Loop() {
			if r := c.Do("POST", e.WS("/conversations/"+fx.conversation+"/messages"), map[string]any{"text": "note", "private": true}); r.Status != 202 {
				b.Fatalf("%d %s", r.Status, r.Body)
			}
		}
	})
}
