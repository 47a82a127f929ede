package twiliosim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestServerValidates(t *testing.T) {
	s := New("AC1", "tok", "+15550100002")
	srv := httptest.NewServer(s)
	defer srv.Close()
	send := func(user, pass string, f url.Values) (int, map[string]any) {
		req, _ := http.NewRequest("POST", srv.URL+"/2010-04-01/Accounts/AC1/Messages.json", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	ok := url.Values{"To": {"+15550100001"}, "From": {"+15550100002"}, "Body": {"hi"}}
	if st, m := send("AC1", "bad", ok); st != 401 || m["code"] != float64(20003) {
		t.Fatal(st, m)
	}
	cases := []struct {
		f    url.Values
		code float64
	}{
		{url.Values{"From": {"+15550100002"}, "Body": {"x"}}, 21604},
		{url.Values{"To": {"555"}, "From": {"+15550100002"}, "Body": {"x"}}, 21211},
		{url.Values{"To": {"+15550100001"}, "From": {"+15559999999"}, "Body": {"x"}}, 21606},
		{url.Values{"To": {"+15550100001"}, "From": {"+15550100002"}}, 21602},
		{url.Values{"To": {"+15550100001"}, "From": {"+15550100002"}, "Body": {strings.Repeat("a", 1601)}}, 21617},
	}
	for _, c := range cases {
		if st, m := send("AC1", "tok", c.f); st != 400 || m["code"] != c.code || m["more_info"] == "" {
			t.Fatalf("%v: %d %v", c.f, st, m)
		}
	}
	st, m := send("AC1", "tok", ok)
	if st != 201 || !strings.HasPrefix(m["sid"].(string), "SM") || m["status"] != "queued" {
		t.Fatal(st, m)
	}
}

func TestSignChangesWithEveryInput(t *testing.T) {
	p := url.Values{"Body": {"hi"}, "From": {"+1"}}
	base := Sign("tok", "https://a/x", p)
	if Sign("tok2", "https://a/x", p) == base || Sign("tok", "https://a/y", p) == base ||
		Sign("tok", "https://a/x", url.Values{"Body": {"ho"}, "From": {"+1"}}) == base {
		t.Fatal("signature ignores an input")
	}
}
