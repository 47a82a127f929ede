package httpapi_test

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/internal/httpapi/apitest"
)

// FuzzDecodeBodies sends arbitrary bytes as the body of the main write
// endpoints: the answer is never a 5xx, and errors always have the API shape.
func FuzzDecodeBodies(f *testing.F) {
	for _, seed := range []string{
		`{"workspace":"A","name":"B","email":"a@b.co","password":"12345678"}`,
		`{"email":"owner@example.com","password":"x"}`,
		`{"name":"C","emails":["c@d.io"],"phones":["+14155550100"],"attributes":{"a":[1,{"b":null}]}}`,
		`{"status":"snoozed","snoozed_until":"2030-01-01T00:00:00Z","assignee_id":null,"priority":"low"}`,
		`{"text":"hi @Olive Owner","private":true,"attachment_ids":[],"reply_to_id":null}`,
		`{"text":"x","template":{"name":"t","language":"en","params":["a"]}}`,
		`{"name":"\u0000\ud800","tags":[""],"notes":"\u202e"}`, `[]`, `null`, `{"name":1e999}`, "{\"a\":\xff", ``, `{}{}`,
	} {
		f.Add([]byte(seed))
	}
	e := newEnv(f, apitest.Options{})
	fx := seed(f, e, e.Owner, e.Workspace.ID, "f")
	endpoints := []struct{ method, path string }{
		{"POST", "/api/v1/setup"},
		{"POST", "/api/v1/auth/login"},
		{"PATCH", "/api/v1/me"},
		{"POST", e.WS("/contacts")},
		{"PATCH", e.WS("/contacts/" + fx.contact)},
		{"PATCH", e.WS("/conversations/" + fx.conversation)},
		{"POST", e.WS("/conversations/" + fx.conversation + "/messages")},
		{"POST", e.WS("/labels")},
		{"POST", e.WS("/channels")},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, ep := range endpoints {
			r := e.Owner.With(t).Do(ep.method, ep.path, body)
			if r.Status >= 500 {
				t.Fatalf("%s %s with %q: %d %s", ep.method, ep.path, body, r.Status, r.Body)
			}
			if r.Status >= 400 {
				var eb struct {
					Error struct {
						Code, Message string
					}
				}
				if err := json.Unmarshal(r.Body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
					t.Fatalf("%s %s: error body %s", ep.method, ep.path, r.Body)
				}
			}
		}
	})
}
