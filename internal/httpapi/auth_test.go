package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/httpapi/apitest"
	"github.com/parleyhq/parley/internal/inbox"
)

func TestSetupOnlyOnce(t *testing.T) {
	e := newEnv(t, apitest.Options{NoSetup: true})
	c := e.NewClient()
	var st map[string]bool
	c.MustDo("GET", "/api/v1/setup", nil, 200, &st)
	if !st["needed"] {
		t.Fatal("setup not needed on an empty database")
	}
	r := c.Do("POST", "/api/v1/setup", map[string]string{"workspace": "", "email": "nope", "password": "short"})
	if r.Status != 400 {
		t.Fatalf("invalid setup: %d", r.Status)
	}
	if f := r.Error(t).Fields; f["workspace"] == "" || f["email"] == "" || f["password"] == "" {
		t.Fatalf("fields = %v", f)
	}
	body := map[string]string{"workspace": "Acme", "name": "Ann", "email": "Ann@Example.com", "password": apitest.Password}
	var out httpapi.SetupResponse
	c.MustDo("POST", "/api/v1/setup", body, 201, &out)
	if out.User.Email != "ann@example.com" || out.Workspace.Name != "Acme" || out.User.ID == "" {
		t.Fatalf("setup = %+v", out)
	}
	if strings.Contains(string(c.Do("GET", "/api/v1/setup", nil).Body), "true") {
		t.Fatal("setup still needed")
	}
	body["email"] = "other@example.com"
	if r := c.Do("POST", "/api/v1/setup", body); r.Status != 409 || r.Error(t).Code != inbox.Conflict {
		t.Fatalf("second setup: %d %s", r.Status, r.Body)
	}
}

func TestLoginCookieCSRFLogout(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	c := e.NewClient()
	if r := c.Do("POST", "/api/v1/auth/login", map[string]string{"email": "owner@example.com", "password": "wrong password"}); r.Status != 401 ||
		string(r.Body) != `{"error":{"code":"unauthorized","message":"wrong email or password","fields":{}}}`+"\n" {
		t.Fatalf("bad password: %d %s", r.Status, r.Body)
	}
	if r := c.Do("POST", "/api/v1/auth/login", map[string]string{"email": "nobody@example.com", "password": "whatever1"}); r.Status != 401 {
		t.Fatalf("unknown user: %d", r.Status)
	}
	r := c.Do("POST", "/api/v1/auth/login", map[string]string{"email": "OWNER@example.com", "password": apitest.Password})
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	var me httpapi.MeResponse
	r.JSON(t, &me)
	if me.CSRFToken == "" || len(me.Workspaces) != 1 || me.Workspaces[0].Role != inbox.RoleOwner || me.User.Email != "owner@example.com" {
		t.Fatalf("login body = %s", r.Body)
	}
	if strings.Contains(string(r.Body), "argon2") || strings.Contains(string(r.Body), "password") {
		t.Fatal("login leaks the password hash")
	}
	ck := (&http.Response{Header: r.Header}).Cookies()
	if len(ck) != 1 || ck[0].Name != "parley_session" || !ck[0].HttpOnly || !ck[0].Secure || ck[0].SameSite != http.SameSiteLaxMode || ck[0].Path != "/" || ck[0].MaxAge <= 0 {
		t.Fatalf("cookie = %+v", ck)
	}

	var me2 httpapi.MeResponse
	c.MustDo("GET", "/api/v1/me", nil, 200, &me2)
	if me2.CSRFToken != me.CSRFToken {
		t.Fatal("GET /me does not return the session's csrf token")
	}
	// Cookie writes need the CSRF token.
	if r := c.Do("POST", "/api/v1/workspaces", map[string]string{"name": "X"}); r.Status != 403 || r.Error(t).Code != inbox.Forbidden {
		t.Fatalf("no CSRF: %d %s", r.Status, r.Body)
	}
	if r := c.DoHeaders("POST", "/api/v1/workspaces", map[string]string{"name": "X"}, http.Header{"X-Csrf-Token": {"wrong"}}); r.Status != 403 {
		t.Fatalf("wrong CSRF: %d", r.Status)
	}
	c.CSRF = me.CSRFToken
	c.MustDo("POST", "/api/v1/workspaces", map[string]string{"name": "X"}, 201, nil)
	c.MustDo("PATCH", "/api/v1/me", map[string]string{"name": "Olive O.", "availability": "busy"}, 200, &me2)
	if me2.User.Name != "Olive O." || me2.User.Availability != "busy" {
		t.Fatalf("PATCH /me = %+v", me2.User)
	}

	c.MustDo("POST", "/api/v1/auth/logout", nil, 204, nil)
	if r := c.Do("GET", "/api/v1/me", nil); r.Status != 401 {
		t.Fatalf("after logout: %d", r.Status)
	}
	if r := e.NewClient().Do("GET", "/api/v1/me", nil); r.Status != 401 || r.Error(t).Code != inbox.Unauthorized {
		t.Fatalf("anonymous /me: %d", r.Status)
	}
}

func TestPasswordChange(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	r := e.Owner.Do("PATCH", "/api/v1/me", map[string]string{"password": "new password 1", "current_password": "wrong"})
	if r.Status != 400 || r.Error(t).Fields["current_password"] == "" {
		t.Fatalf("wrong current password: %d %s", r.Status, r.Body)
	}
	e.Owner.MustDo("PATCH", "/api/v1/me", map[string]string{"password": "new password 1", "current_password": apitest.Password}, 200, nil)
	e.Login("owner@example.com", "new password 1")
	if r := e.NewClient().Do("POST", "/api/v1/auth/login", map[string]string{"email": "owner@example.com", "password": apitest.Password}); r.Status != 401 {
		t.Fatalf("old password still works: %d", r.Status)
	}
}

func TestBearerTokens(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	var tok httpapi.TokenResponse
	e.Owner.MustDo("POST", e.WS("/tokens"), map[string]string{"name": "zapier"}, 201, &tok)
	if !strings.HasPrefix(tok.Token, "prl_") || tok.ID == "" {
		t.Fatalf("token = %+v", tok)
	}
	// Shown once: listing never returns it.
	list := e.Owner.MustDo("GET", e.WS("/tokens"), nil, 200, nil)
	if strings.Contains(string(list.Body), tok.Token) || !strings.Contains(string(list.Body), tok.ID) {
		t.Fatalf("token list: %s", list.Body)
	}
	// Stored hashed: the store finds it by SHA-256 and the database never holds the token.
	if got, err := e.Store.APITokenByHash(t.Context(), auth.HashToken(tok.Token)); err != nil || got.ID != tok.ID {
		t.Fatalf("APITokenByHash: %v", err)
	}
	if e.Store.Dialect() == "sqlite" {
		files, _ := filepath.Glob(strings.TrimPrefix(e.DBURL, "sqlite:") + "*")
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if bytes.Contains(b, []byte(tok.Token)) {
				t.Fatalf("%s contains the raw token", f)
			}
		}
	}

	bearer := e.Bearer(tok.Token)
	// Bearer writes need no CSRF token.
	bearer.MustDo("POST", e.WS("/contacts"), map[string]string{"name": "Bo"}, 201, nil)
	var me httpapi.MeResponse
	bearer.MustDo("GET", "/api/v1/me", nil, 200, &me)
	if me.CSRFToken != "" || len(me.Workspaces) != 1 {
		t.Fatalf("bearer /me = %s", mustJSON(me))
	}
	// A token acts only inside its workspace: no new workspaces, no profile changes.
	if r := bearer.Do("POST", "/api/v1/workspaces", map[string]string{"name": "Side"}); r.Status != 403 {
		t.Fatalf("token creating a workspace: %d", r.Status)
	}
	if r := bearer.Do("PATCH", "/api/v1/me", map[string]string{"name": "Hacker"}); r.Status != 403 {
		t.Fatalf("token changing the profile: %d", r.Status)
	}
	for _, h := range []string{"Bearer nope", "Bearer", "Basic abc", "bearer  "} {
		if r := e.NewClient().DoHeaders("GET", "/api/v1/me", nil, http.Header{"Authorization": {h}}); r.Status != 401 {
			t.Errorf("Authorization %q: %d", h, r.Status)
		}
	}
	// WebSocket-style bearer in Sec-WebSocket-Protocol works for GETs.
	if r := e.NewClient().DoHeaders("GET", "/api/v1/me", nil, http.Header{"Sec-Websocket-Protocol": {"parley, bearer." + bearer.Token}}); r.Status != 200 {
		t.Fatalf("protocol bearer: %d", r.Status)
	}
	// Revoked tokens stop working.
	var toks httpapi.ListResponse[inbox.APIToken]
	e.Owner.MustDo("GET", e.WS("/tokens"), nil, 200, &toks)
	for _, tk := range toks.Items {
		e.Owner.MustDo("DELETE", e.WS("/tokens/"+tk.ID), nil, 204, nil)
	}
	if r := bearer.Do("GET", "/api/v1/me", nil); r.Status != 401 {
		t.Fatalf("revoked token: %d", r.Status)
	}
}

func TestTokenRoles(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	agent := e.AddMember(e.Owner, e.Workspace.ID, "agent@example.com", inbox.RoleAgent)
	var own, owners httpapi.TokenResponse
	agent.MustDo("POST", e.WS("/tokens"), map[string]string{"name": "mine"}, 201, &own)
	e.Owner.MustDo("POST", e.WS("/tokens"), map[string]string{"name": "owner's"}, 201, &owners)
	var l httpapi.ListResponse[inbox.APIToken]
	agent.MustDo("GET", e.WS("/tokens"), nil, 200, &l)
	if len(l.Items) != 1 || l.Items[0].ID != own.ID {
		t.Fatalf("agent sees %d tokens", len(l.Items))
	}
	e.Owner.MustDo("GET", e.WS("/tokens"), nil, 200, &l)
	if len(l.Items) != 2 {
		t.Fatalf("owner sees %d tokens", len(l.Items))
	}
	if r := agent.Do("DELETE", e.WS("/tokens/"+owners.ID), nil); r.Status != 403 {
		t.Fatalf("agent deleting the owner's token: %d", r.Status)
	}
	agent.MustDo("DELETE", e.WS("/tokens/"+own.ID), nil, 204, nil)
	// Agents read but do not manage.
	agent.MustDo("GET", e.WS("/labels"), nil, 200, nil)
	if r := agent.Do("POST", e.WS("/labels"), map[string]string{"name": "x"}); r.Status != 403 {
		t.Fatalf("agent creating a label: %d", r.Status)
	}
	// Owners cannot be demoted by admins, and the last owner cannot leave.
	admin := e.AddMember(e.Owner, e.Workspace.ID, "admin@example.com", inbox.RoleAdmin)
	if r := admin.Do("PATCH", e.WS("/members/"+e.OwnerUser.ID), map[string]string{"role": "agent"}); r.Status != 403 {
		t.Fatalf("admin demoting owner: %d", r.Status)
	}
	if r := e.Owner.Do("DELETE", e.WS("/members/"+e.OwnerUser.ID), nil); r.Status != 409 {
		t.Fatalf("removing the last owner: %d %s", r.Status, r.Body)
	}
	admin.MustDo("PATCH", e.WS("/members/"+agent.User.ID), map[string]string{"role": "admin"}, 200, nil)
	agent.MustDo("POST", e.WS("/labels"), map[string]string{"name": "now allowed"}, 201, nil)
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	c := e.NewClient()
	bad := map[string]string{"email": "owner@example.com", "password": "wrong password"}
	for i := 0; i < 5; i++ {
		if r := c.Do("POST", "/api/v1/auth/login", bad); r.Status != 401 {
			t.Fatalf("attempt %d: %d", i+1, r.Status)
		}
	}
	r := c.Do("POST", "/api/v1/auth/login", map[string]string{"email": "owner@example.com", "password": apitest.Password})
	if r.Status != 429 || r.Error(t).Code != inbox.RateLimited {
		t.Fatalf("after 5 failures: %d %s", r.Status, r.Body)
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 15*60 {
		t.Fatalf("Retry-After = %q", r.Header.Get("Retry-After"))
	}
	// Another account from the same address is still allowed (per-IP limit is higher).
	e.AddMember(e.Owner, e.Workspace.ID, "second@example.com", inbox.RoleAgent)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
