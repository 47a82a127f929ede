package instagram

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
)

// TestProfile: an IGSID is looked up with GET /{IGSID}?fields=name,username,profile_pic
// (providers.md §3) and the Bearer token; a user without a name is shown by
// their username.
func TestProfile(t *testing.T) {
	answers := map[string]string{
		"/v21.0/" + igsid:  `{"name":"Ana Lima","username":"ana.l","profile_pic":"https://cdn.example/a.jpg","id":"` + igsid + `"}`,
		"/v21.0/IG-NONAME": `{"username":"bo_chen","profile_pic":"https://cdn.example/b.jpg","id":"IG-NONAME"}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.Path]
		if r.Header.Get("Authorization") != "Bearer IG-TOKEN" || r.URL.Query().Get("fields") != "name,username,profile_pic" || !ok {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":{"message":"Unsupported get request.","type":"GraphMethodException","code":100,"error_subcode":33}}`))
			return
		}
		w.Write([]byte(a))
	}))
	defer srv.Close()
	cfg := channel.Config{Config: map[string]any{"account_id": acct, "api_base_url": srv.URL + "/v21.0"},
		Secrets: map[string]string{"access_token": "IG-TOKEN"}, HTTPClient: srv.Client()}
	var pl channel.ProfileLookup = New()
	tests := []struct {
		id, name, avatar string
		fails            bool
	}{
		{igsid, "Ana Lima", "https://cdn.example/a.jpg", false},
		{"IG-NONAME", "bo_chen", "https://cdn.example/b.jpg", false},
		{"IG-UNKNOWN", "", "", true},
	}
	for _, tc := range tests {
		p, err := pl.Profile(context.Background(), cfg, tc.id)
		if tc.fails {
			if err == nil || channel.IsRetryable(err) {
				t.Errorf("%s: %+v %v, want a permanent error", tc.id, p, err)
			}
			continue
		}
		if err != nil || p.Identifier != tc.id || p.Name != tc.name || p.AvatarURL != tc.avatar {
			t.Errorf("%s: %+v %v", tc.id, p, err)
		}
	}
}
