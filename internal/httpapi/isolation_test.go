package httpapi_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/httpapi/apitest"
	"github.com/parleyhq/parley/internal/inbox"
)

// idFor picks, for each path parameter, the fixture's id of that kind: the
// parameter is named by the path segment before it.
func (f fixture) path(pattern string) string {
	segs := strings.Split(pattern, "/")
	for i, s := range segs {
		if !strings.HasPrefix(s, "{") {
			continue
		}
		prev := ""
		if i > 0 {
			prev = segs[i-1]
		}
		var id string
		switch {
		case s == "{ws}":
			id = f.ws
		case s == "{label_id}":
			id = f.label
		case prev == "members":
			id = f.agent.ID
		case prev == "tokens":
			id = f.token
		case prev == "teams":
			id = f.team
		case prev == "labels":
			id = f.label
		case prev == "provider-accounts":
			id = f.account
		case prev == "channels":
			id = f.channel
		case prev == "contacts":
			id = f.contact
		case prev == "conversations":
			id = f.conversation
		case prev == "messages":
			id = f.message
		default: // a kind this test does not seed: an unknown id
			id = uuid.Must(uuid.NewV7()).String()
		}
		segs[i] = id
	}
	return strings.Join(segs, "/")
}

// body is a valid body for the route's request type, so a 404 cannot come
// from a validation 400 that happens to run first.
func (f fixture) body(rt httpapi.Route) any {
	if rt.Request == nil {
		return nil
	}
	switch reflect.TypeOf(rt.Request) {
	case reflect.TypeFor[httpapi.RoleRequest]():
		return map[string]string{"role": "agent"}
	case reflect.TypeFor[httpapi.LabelIDsRequest]():
		return map[string][]string{"label_ids": {f.label}}
	case reflect.TypeFor[httpapi.SendRequest]():
		return map[string]any{"text": "hello", "private": true}
	case reflect.TypeFor[httpapi.ReactionRequest]():
		return map[string]string{"emoji": "👍"}
	case reflect.TypeFor[httpapi.MergeRequest]():
		return map[string]any{"primary_id": f.contact, "merge_ids": []string{uuid.Must(uuid.NewV7()).String()}}
	}
	return map[string]any{}
}

func TestWorkspaceIsolation(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) { testIsolation(t, pg) })
	}
}

func testIsolation(t *testing.T, pg bool) {
	e := newEnv(t, apitest.Options{Postgres: pg})
	a := seed(t, e, e.Owner, e.Workspace.ID, "a")

	// A second workspace with its own owner (not a member of A) and objects.
	var wsB httpapi.WorkspaceResponse
	outsider := e.AddMember(e.Owner, e.Workspace.ID, "outsider@example.com", inbox.RoleAgent)
	e.Owner.MustDo("DELETE", e.WS("/members/"+outsider.User.ID), nil, http.StatusNoContent, nil)
	outsider.MustDo("POST", "/api/v1/workspaces", map[string]string{"name": "Beta"}, http.StatusCreated, &wsB)
	b := seed(t, e, outsider, wsB.ID, "b")
	outsiderToken := e.Token(outsider, wsB.ID)
	// The owner of A is also an owner of a workspace C: their C token must not reach A.
	var wsC httpapi.WorkspaceResponse
	e.Owner.MustDo("POST", "/api/v1/workspaces", map[string]string{"name": "Gamma"}, http.StatusCreated, &wsC)
	crossToken := e.Token(e.Owner, wsC.ID)
	agent := e.Login(a.agent.Email, apitest.Password)
	agentToken := e.Token(agent, a.ws)

	snapshotBefore := e.Owner.MustDo("GET", e.WS("/sync/snapshot"), nil, http.StatusOK, nil)

	routes := httpapi.RouteTable(e.Deps)
	scoped := 0
	for _, rt := range routes {
		if !strings.Contains(rt.Path, "{ws}") {
			continue
		}
		scoped++
		t.Run(rt.Pattern(), func(t *testing.T) {
			// 1. A non-member, by cookie and by their own workspace's token, on A's objects.
			for who, c := range map[string]*apitest.Client{"outsider cookie": outsider, "outsider token": outsiderToken, "other-workspace token": crossToken} {
				r := c.Do(rt.Method, a.path(rt.Path), a.body(rt))
				if r.Status != http.StatusNotFound || r.Error(t).Code != inbox.NotFound {
					t.Errorf("%s on workspace A: status %d, want 404 not_found: %s", who, r.Status, r.Body)
				}
			}
			// 2. A member of B addressing A's ids through B's path.
			if len(strings.Split(rt.Path, "{")) > 2 { // has ids besides {ws}
				pathB := strings.Replace(a.path(rt.Path), a.ws, b.ws, 1)
				r := outsider.Do(rt.Method, pathB, a.body(rt))
				if r.Status != http.StatusNotFound {
					t.Errorf("A's ids through workspace B: status %d, want 404: %s", r.Status, r.Body)
				}
			}
			// 3. An agent on admin-only routes.
			if rt.Access == httpapi.Admin {
				for who, c := range map[string]*apitest.Client{"agent cookie": agent, "agent token": agentToken} {
					r := c.Do(rt.Method, a.path(rt.Path), a.body(rt))
					if r.Status != http.StatusForbidden || r.Error(t).Code != inbox.Forbidden {
						t.Errorf("%s on admin route: status %d, want 403 forbidden: %s", who, r.Status, r.Body)
					}
				}
			}
		})
	}
	if scoped < 50 {
		t.Fatalf("only %d workspace-scoped routes walked", scoped)
	}
	// Nothing the refused requests tried changed workspace A's data.
	snapshotAfter := e.Owner.MustDo("GET", e.WS("/sync/snapshot"), nil, http.StatusOK, nil)
	var before, after inbox.Snapshot
	snapshotBefore.JSON(t, &before)
	snapshotAfter.JSON(t, &after)
	if before.Cursor != after.Cursor || len(before.Labels) != len(after.Labels) || len(before.Channels) != len(after.Channels) ||
		len(before.Members) != len(after.Members) || len(before.Conversations) != len(after.Conversations) {
		t.Errorf("workspace A changed: cursor %s → %s", before.Cursor, after.Cursor)
	}
}
