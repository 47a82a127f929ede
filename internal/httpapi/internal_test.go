package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/parleyhq/parley/internal/inbox"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestOpenAPIMatchesRouter compares the patterns registered on the mux with
// the operations of the served OpenAPI document.
func TestOpenAPIMatchesRouter(t *testing.T) {
	extra := Route{Method: "POST", Path: "/webhooks/{channel_id}", Access: Public, Summary: "provider webhooks",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	s := newServer(Deps{Routes: []Route{extra}})
	h := s.handler()
	resp, body := get(t, h, "/api/v1/openapi.json")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			resps, _ := op["responses"].(map[string]any)
			if _, ok := resps["default"]; !ok || len(resps) < 2 {
				t.Errorf("%s %s: responses %v lack a success or the error schema", method, path, resps)
			}
			for _, p := range pathParams(path) {
				if !strings.Contains(mustMarshal(op["parameters"]), `"name":"`+p+`"`) {
					t.Errorf("%s %s: path parameter %s undocumented", method, path, p)
				}
			}
		}
	}
	registered := slices.Clone(s.registered)
	slices.Sort(registered)
	slices.Sort(documented)
	if !slices.Equal(registered, documented) {
		for _, r := range registered {
			if !slices.Contains(documented, r) {
				t.Errorf("registered but not documented: %s", r)
			}
		}
		for _, d := range documented {
			if !slices.Contains(registered, d) {
				t.Errorf("documented but not registered: %s", d)
			}
		}
	}
	if !slices.Contains(registered, "POST /webhooks/{channel_id}") || len(registered) < 60 {
		t.Fatalf("registered %d patterns", len(registered))
	}
	for _, want := range []string{`"Error"`, `"Conversation"`, `"Contact"`, `"bearer"`, `"parley_session"`} {
		if !strings.Contains(body, want) {
			t.Errorf("document lacks %s", want)
		}
	}
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestWebApp(t *testing.T) {
	// Not built: the first-run/login page for any non-API path.
	h := newServer(Deps{WebDist: fstest.MapFS{".gitkeep": {}}}).handler()
	resp, body := get(t, h, "/")
	if resp.StatusCode != 200 || !strings.Contains(body, "/setup") || !strings.Contains(body, "/auth/login") {
		t.Fatalf("placeholder: %d %.100s", resp.StatusCode, body)
	}
	// Built: files, and index.html for client routes; unknown API paths stay JSON 404.
	dist := fstest.MapFS{
		"index.html":    {Data: []byte("<html>app</html>")},
		"assets/app.js": {Data: []byte("console.log(1)")},
	}
	h = newServer(Deps{WebDist: dist}).handler()
	for path, want := range map[string]string{"/": "<html>app</html>", "/inbox/123": "<html>app</html>", "/assets/app.js": "console.log(1)"} {
		resp, body := get(t, h, path)
		if resp.StatusCode != 200 || body != want {
			t.Errorf("GET %s = %d %q", path, resp.StatusCode, body)
		}
	}
	resp, body = get(t, h, "/api/v1/nope")
	if resp.StatusCode != 404 || !strings.Contains(body, `"not_found"`) {
		t.Errorf("unknown API path: %d %s", resp.StatusCode, body)
	}
}

func TestWebAppGzip(t *testing.T) {
	js := strings.Repeat("console.log('parley');\n", 200)
	h := newServer(Deps{WebDist: fstest.MapFS{"index.html": {Data: []byte("<html>app</html>")}, "assets/app.js": {Data: []byte(js)},
		"assets/logo.png": {Data: []byte(strings.Repeat("x", 4096))}}}).handler()
	for _, tc := range []struct {
		path, accept string
		gzipped      bool
	}{
		{"/assets/app.js", "gzip, deflate, br", true},
		{"/assets/app.js", "br;q=1.0, gzip;q=0.8", true},
		{"/assets/app.js", "gzip;q=0", false},
		{"/assets/app.js", "", false},
		{"/assets/logo.png", "gzip", false}, // already compressed formats are sent as they are
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		req.Header.Set("Accept-Encoding", tc.accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if got := rec.Header().Get("Content-Encoding") == "gzip"; got != tc.gzipped || rec.Code != 200 {
			t.Fatalf("%s with %q: status %d, gzip %v, want %v", tc.path, tc.accept, rec.Code, got, tc.gzipped)
		}
		if tc.gzipped {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := io.ReadAll(zr)
			if string(plain) != js || len(body) >= len(js)/4 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") {
				t.Fatalf("gzip body: %d bytes for %d, type %q", len(body), len(js), rec.Header().Get("Content-Type"))
			}
		}
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"+1 415 555 0100": "+14155550100", "+44 20 7946 0958": "+442079460958", "0049 30 901820": "+4930901820",
		"+7 (912) 345-67-89": "+79123456789",
	} {
		if got, ok := NormalizePhone(in); !ok || got != want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "12345", "4155550100", "+1 000", "phone", "+999 123456789", strings.Repeat("9", 40)} {
		if got, ok := NormalizePhone(bad); ok {
			t.Errorf("NormalizePhone(%q) accepted: %q", bad, got)
		}
	}
	for in, want := range map[string]string{"Ann@Example.COM": "ann@example.com", " bob@x.io ": "bob@x.io"} {
		if got, ok := NormalizeEmail(in); !ok || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "ann", "ann@", "@x.com", "Ann <ann@x.com>", "ann@localhost", "a b@x.com", "ann@x.com,bob@x.com"} {
		if got, ok := NormalizeEmail(bad); ok {
			t.Errorf("NormalizeEmail(%q) accepted: %q", bad, got)
		}
	}
}

func TestFindMentions(t *testing.T) {
	ms := []inbox.Member{
		{User: inbox.User{ID: "u1", Name: "Ann Lee", Email: "ann@x.com"}},
		{User: inbox.User{ID: "u2", Name: "Bob", Email: "bob@x.com"}},
		{User: inbox.User{ID: "u3", Name: "Bobby", Email: "bobby@x.com"}},
	}
	for text, want := range map[string][]string{
		"@Ann Lee please look":       {"u1"},
		"cc @bob@x.com":              {"u2"},
		"@Bobby, thanks":             {"u3"},
		"hey @bob.":                  {"u2"},
		"mail me at joe@bob.com":     nil,
		"@ann lee and @BOB":          {"u1", "u2"},
		"no mentions here":           nil,
		"email@Bob is not a mention": nil,
	} {
		if got := findMentions(strings.ToLower(text), ms); !slices.Equal(got, want) {
			t.Errorf("findMentions(%q) = %v, want %v", text, got, want)
		}
	}
}

// FuzzDecode runs the strict decoder over every request body type: it never
// panics, and every failure is an invalid/too_large *inbox.Error.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"name":"a"}`, `{"emails":[1]}`, `{"snoozed_until":"x"}`, `[]`, `{"a":1}`, `{} {}`, `{"text":"\ud800"}`} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return &SetupRequest{} }, func() any { return &LoginRequest{} }, func() any { return &ContactRequest{} },
		func() any { return &ConversationPatchRequest{} }, func() any { return &SendRequest{} }, func() any { return &MePatch{} },
		func() any { return &ChannelRequest{} }, func() any { return &MergeRequest{} }, func() any { return &TeamRequest{} },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, newT := range targets {
			r := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
			r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<20)
			err := decode(r, newT())
			if err == nil {
				continue
			}
			if c := inbox.ErrorCode(err); c != inbox.Invalid && c != inbox.TooLarge {
				t.Fatalf("decode(%q) = %v (code %s)", body, err, c)
			}
		}
	})
}
