package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/httpapi/apitest"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/store"
)

// isoFixture is a seeded workspace plus the objects only the pipeline routes
// reach (an uploaded attachment).
type isoFixture struct {
	fixture
	attachment string
}

// path fills the pattern's parameters with the fixture's ids: each parameter
// gets the id of the kind named by the path segment before it.
func (f isoFixture) path(pattern string) string {
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
		case prev == "attachments":
			id = f.attachment
		default: // a kind this test does not seed: an unknown id
			id = uuid.Must(uuid.NewV7()).String()
		}
		segs[i] = id
	}
	return strings.Join(segs, "/")
}

// body is a valid body for the route's request type, so a 404 cannot come
// from a validation 400 that happens to run first.
func (f isoFixture) body(rt httpapi.Route) any {
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

// storeMedia stands in for the media service: it answers from the store's
// workspace-scoped attachment lookup (as the real service does) without
// touching files, which is all the routing/auth isolation check needs.
type storeMedia struct{ db *store.DB }

func writeStubError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, inbox.Internal
	if inbox.IsCode(err, inbox.NotFound) {
		status, code = http.StatusNotFound, inbox.NotFound
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(httpapi.ErrorBody{Error: httpapi.ErrorDetail{Code: code, Message: inbox.ErrorMessage(err)}})
}

func (m storeMedia) HandleUpload(w http.ResponseWriter, r *http.Request, wsID, userID string) {
	a, err := m.db.CreateUpload(r.Context(), wsID, userID, inbox.Attachment{Kind: "file", MimeType: "text/plain", Filename: "stub.txt", Size: 1})
	if err != nil {
		writeStubError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(httpapi.UploadResponse{ID: a.ID, Kind: a.Kind, MimeType: a.MimeType, Size: a.Size, Filename: a.Filename})
}

func (m storeMedia) ServeAttachment(w http.ResponseWriter, r *http.Request, wsID, id string) {
	if _, err := m.db.MediaAttachment(r.Context(), wsID, id); err != nil {
		writeStubError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("x"))
}

func (m storeMedia) HandleShare(w http.ResponseWriter, r *http.Request, wsID, id string) {
	if _, err := m.db.MediaAttachment(r.Context(), wsID, id); err != nil {
		writeStubError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(httpapi.ShareResponse{URL: "https://parley.test/share/stub"})
}

func (storeMedia) ServeShare(w http.ResponseWriter, _ *http.Request, _ string) {
	writeStubError(w, inbox.Errorf(inbox.NotFound, "this link has expired"))
}

// pipelineRoutes are the pipeline's routes over st, with the media service,
// webhooks and QR authorization stubbed; retry and the authorization lookup
// go through the store's workspace-scoped calls as in cmd/parley.
func pipelineRoutes(st inbox.Store) []httpapi.Route {
	db := st.(*store.DB)
	return httpapi.PipelineRoutes(httpapi.Pipeline{
		Store: st,
		Media: storeMedia{db: db},
		Retry: func(ctx context.Context, wsID, id string) (inbox.Message, error) {
			return db.RetryMessage(ctx, wsID, id)
		},
		Authorization: func(_ context.Context, ch inbox.Channel) (httpapi.Authorization, error) {
			return httpapi.Authorization{ChannelID: ch.ID}, nil
		},
		MaxUpload: 1 << 20,
	})
}

func countScoped(routes []httpapi.Route) int {
	n := 0
	for _, rt := range routes {
		if strings.Contains(rt.Path, "{ws}") {
			n++
		}
	}
	return n
}

func testIsolation(t *testing.T, pg bool) {
	e := newEnv(t, apitest.Options{Postgres: pg, Configure: func(d *httpapi.Deps) {
		d.Routes = append(d.Routes, pipelineRoutes(d.Store)...)
	}})
	a := isoFixture{fixture: seed(t, e, e.Owner, e.Workspace.ID, "a")}
	att, err := e.Store.CreateUpload(context.Background(), a.ws, e.OwnerUser.ID, inbox.Attachment{Kind: "file", MimeType: "text/plain", Filename: "a.txt", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	a.attachment = att.ID
	e.Owner.MustDo("GET", e.WS("/attachments/"+a.attachment), nil, http.StatusOK, nil) // reachable by its own workspace

	// A second workspace with its own owner (not a member of A) and objects.
	var wsB httpapi.WorkspaceResponse
	outsider := e.AddMember(e.Owner, e.Workspace.ID, "outsider@example.com", inbox.RoleAgent)
	e.Owner.MustDo("DELETE", e.WS("/members/"+outsider.User.ID), nil, http.StatusNoContent, nil)
	outsider.MustDo("POST", "/api/v1/workspaces", map[string]string{"name": "Beta"}, http.StatusCreated, &wsB)
	b := isoFixture{fixture: seed(t, e, outsider, wsB.ID, "b")}
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
	// Every workspace-scoped route of every group is walked: the core table,
	// the realtime routes and the pipeline routes.
	want := countScoped(httpapi.RouteTable(httpapi.Deps{Store: e.Store})) +
		countScoped(httpapi.RealtimeRoutes(e.Store, e.Hub, nil)) + countScoped(pipelineRoutes(e.Store))
	if scoped != want {
		t.Fatalf("walked %d workspace-scoped routes, want %d (core + realtime + pipeline)", scoped, want)
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
