package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/httpapi/apitest"
	"github.com/parleyhq/parley/internal/inbox"
)

func TestBadInput(t *testing.T) {
	e := newEnv(t, apitest.Options{Configure: func(d *httpapi.Deps) { d.MaxBodyBytes = 4096 }})
	f := seed(t, e, e.Owner, e.Workspace.ID, "a")
	contacts := e.WS("/contacts")
	conv := e.WS("/conversations/" + f.conversation)
	big := `{"name":"` + strings.Repeat("x", 5000) + `"}`
	cases := []struct {
		name, method, path string
		body               any
		status             int
		field              string // a field that must be named
	}{
		{"malformed", "POST", contacts, `{"name":`, 400, ""},
		{"not json", "POST", contacts, `name=bob`, 400, ""},
		{"empty body", "POST", contacts, ``, 400, ""},
		{"array", "POST", contacts, `[]`, 400, ""},
		{"string", "POST", contacts, `"bob"`, 400, ""},
		{"two objects", "POST", contacts, `{"name":"a"}{"name":"b"}`, 400, ""},
		{"trailing garbage", "POST", contacts, `{"name":"a"} x`, 400, ""},
		{"unknown field", "POST", contacts, `{"name":"a","nickname":"b"}`, 400, "nickname"},
		{"wrong type", "POST", contacts, `{"name":5}`, 400, "name"},
		{"wrong type in list", "POST", contacts, `{"emails":[1]}`, 400, "emails"},
		{"wrong type bool", "POST", contacts, `{"name":"a","blocked":"yes"}`, 400, "blocked"},
		{"invalid email", "POST", contacts, `{"name":"a","emails":["not-an-email"]}`, 400, "emails[0]"},
		{"invalid phone", "POST", contacts, `{"name":"a","phones":["12345"]}`, 400, "phones[0]"},
		{"nothing", "POST", contacts, `{}`, 400, "name"},
		{"oversized", "POST", contacts, big, 413, ""},
		{"patch bad email", "PATCH", contacts + "/" + f.contact, `{"emails":["x@"]}`, 400, "emails[0]"},
		{"patch unknown id", "PATCH", contacts + "/0190b8c4-0000-7000-8000-000000000000", `{"name":"z"}`, 404, ""},
		{"malformed id", "GET", contacts + "/not-an-id", nil, 404, ""},
		{"malformed ws", "GET", "/api/v1/workspaces/123/contacts", nil, 404, ""},
		{"bad limit", "GET", contacts + "?limit=0", nil, 400, "limit"},
		{"huge limit", "GET", contacts + "?limit=1000", nil, 400, "limit"},
		{"bad view", "GET", e.WS("/conversations?view=everything"), nil, 400, "view"},
		{"bad status filter", "GET", e.WS("/conversations?status=done"), nil, 400, "status"},
		{"bad status", "PATCH", conv, `{"status":"done"}`, 400, "status"},
		{"bad priority", "PATCH", conv, `{"priority":"extreme"}`, 400, "priority"},
		{"bad snooze type", "PATCH", conv, `{"snoozed_until":"tomorrow"}`, 400, ""},
		{"snooze without time", "PATCH", conv, `{"status":"snoozed"}`, 400, "snoozed_until"},
		{"assignee not member", "PATCH", conv, `{"assignee_id":"0190b8c4-0000-7000-8000-000000000000"}`, 400, "assignee_id"},
		{"bad role", "POST", e.WS("/members"), `{"email":"z@x.com","name":"Z","password":"longenough","role":"boss"}`, 400, "role"},
		{"bad label color", "POST", e.WS("/labels"), `{"name":"x","color":"red"}`, 400, "color"},
		{"empty message", "POST", conv + "/messages", `{"text":"  "}`, 400, "text"},
		{"bad attachment id", "POST", conv + "/messages", `{"text":"x","attachment_ids":["nope"]}`, 400, "attachment_ids[0]"},
		{"unknown channel kind", "POST", e.WS("/channels"), `{"kind":"carrier-pigeon","name":"x"}`, 400, "kind"},
		{"adapter rejects config", "POST", e.WS("/channels"), `{"kind":"test","name":"x","config":{"region":5},"secrets":{}}`, 400, "secrets.token"},
		{"bad label ids", "POST", conv + "/labels", `{"label_ids":[]}`, 400, "label_ids"},
		{"bad since", "GET", e.WS("/sync"), nil, 400, "since"},
		{"garbage contacts cursor", "GET", contacts + "?cursor=garbage", nil, 0, ""}, // 0: any non-5xx
		{"garbage queue cursor", "GET", e.WS("/conversations?cursor=zzz"), nil, 400, ""},
		{"garbage messages cursor", "GET", conv + "/messages?before=zzz", nil, 400, ""},
		{"q with wildcards", "GET", contacts + "?q=%25_%5C", nil, 200, ""},
		{"bad login body", "POST", "/api/v1/auth/login", `{"email":1}`, 400, "email"},
		{"merge into itself", "POST", contacts + "/merge", `{"primary_id":"` + f.contact + `","merge_ids":["` + f.contact + `"]}`, 400, "merge_ids[0]"},
	}
	snapshot := func() []byte {
		var s inbox.Snapshot
		e.Owner.MustDo("GET", e.WS("/sync/snapshot"), nil, 200, &s)
		l := e.Owner.MustDo("GET", contacts+"?limit=100", nil, 200, nil)
		return append([]byte(s.Cursor+"|"), l.Body...)
	}
	before := snapshot()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Owner.Do(tc.method, tc.path, tc.body)
			if tc.status == 0 && r.Status < 500 {
				return
			}
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.status < 300 {
				return
			}
			er := r.Error(t)
			wantCode := map[int]inbox.Code{400: inbox.Invalid, 404: inbox.NotFound, 413: inbox.TooLarge}[tc.status]
			if er.Code != wantCode || er.Message == "" {
				t.Fatalf("error = %+v, want code %s", er, wantCode)
			}
			if tc.field != "" && er.Fields[tc.field] == "" {
				t.Fatalf("fields %v do not name %q", er.Fields, tc.field)
			}
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("content type %q", r.Header.Get("Content-Type"))
			}
		})
	}
	if after := snapshot(); !bytes.Equal(before, after) {
		t.Fatalf("bad requests changed data:\nbefore %s\nafter  %s", before, after)
	}
	// An oversized body without Content-Length (chunked) is refused as well.
	req, _ := http.NewRequest("POST", e.URL+contacts, &slowReader{data: []byte(big)})
	req.Header.Set("Authorization", "Bearer "+e.Token(e.Owner, e.Workspace.ID).Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked oversized body: %d", resp.StatusCode)
	}
}

// slowReader hides its length so the request is sent chunked.
type slowReader struct{ data []byte }

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data[:min(len(p), 512, len(r.data))])
	r.data = r.data[n:]
	return n, nil
}
