package wappisim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func call(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestServerValidatesAndStateMachine(t *testing.T) {
	s := New("tok")
	srv := httptest.NewServer(s)
	defer srv.Close()
	defer s.Close()
	s.AddProfile(Profile{ID: "p-1", Network: "whatsapp", State: StatePendingQR})
	u := srv.URL + "/api/sync/message/send?profile_id=p-1"
	if st, m := call(t, "POST", u, "Bearer tok", `{"recipient":"1","body":"x"}`); st != 401 || m["status"] != "error" {
		t.Fatal(st, m)
	}
	if st, _ := call(t, "POST", srv.URL+"/api/sync/message/send?profile_id=nope", "tok", `{"recipient":"1","body":"x"}`); st != 404 {
		t.Fatal(st)
	}
	if st, _ := call(t, "POST", srv.URL+"/tapi/sync/message/send?profile_id=p-1", "tok", `{"recipient":"1","body":"x"}`); st != 400 {
		t.Fatal("wrong network prefix must fail", st)
	}
	if st, m := call(t, "POST", u, "tok", `{"recipient":"1","body":"x"}`); st != 400 || !strings.Contains(m["detail"].(string), "not authorized") {
		t.Fatal(st, m)
	}
	if err := s.Authorize(context.Background(), "p-1"); err == nil {
		t.Fatal("authorize needs a scan first")
	}
	if err := s.Scan(context.Background(), "p-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Authorize(context.Background(), "p-1"); err != nil {
		t.Fatal(err)
	}
	if st, m := call(t, "POST", u, "tok", `{"recipient":"1"}`); st != 400 {
		t.Fatal(st, m)
	}
	st, m := call(t, "POST", u, "tok", `{"recipient":"15550009999","body":"hi"}`)
	if st != 200 || m["status"] != "done" || !strings.HasPrefix(m["message_id"].(string), "3EB0") {
		t.Fatal(st, m)
	}
	if st, m := call(t, "GET", srv.URL+"/api/sync/get/status?profile_id=p-1", "tok", ""); st != 200 || m["authorized"] != true {
		t.Fatal(st, m)
	}
}

func TestPayloadShapes(t *testing.T) {
	var single struct {
		Messages map[string]any `json:"messages"`
	}
	if err := json.Unmarshal(DeliveryStatus("p", "id", "1@c.us", "read"), &single); err != nil || single.Messages["status"] != "read" {
		t.Fatal(err, single)
	}
	yes := true
	var env struct {
		Messages []map[string]any `json:"messages"`
	}
	if err := json.Unmarshal(Incoming(Msg{ProfileID: "p", Network: "max", ID: "1", From: "-5", IsGroup: &yes}), &env); err != nil {
		t.Fatal(err)
	}
	if env.Messages[0]["isGroup"] != "true" || env.Messages[0]["type"] != "text" {
		t.Fatal(env.Messages[0])
	}
}
