package wappi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// An element of the webhook array that is not an event object is kept as a
// placeholder named by a hash of its bytes: stable across redeliveries and
// reprocessing, distinct per element; the rest of the batch is unaffected.
func TestParseUnreadableElement(t *testing.T) {
	body := `{"messages":[42,{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":"3EB0FFEE","type":"chat","body":"hi","from":"15550009999@c.us","chatId":"15550009999@c.us","senderName":"Tom","time":1700000000},"chat",[1,2]]}`
	evs := parseNet(t, NetWhatsApp, body)
	if len(evs) != 4 {
		t.Fatalf("%+v", evs)
	}
	again := parseNet(t, NetWhatsApp, body)
	seen := map[string]bool{}
	for i, want := range []string{`42`, ``, `"chat"`, `[1,2]`} {
		e := evs[i]
		if want == "" {
			if e.ExternalID != "0a1b2c3d-4e5f:3EB0FFEE" || e.Kind != inbox.KindText {
				t.Fatalf("the good element: %+v", e)
			}
			continue
		}
		if e.Type != channel.EventMessage || e.Kind != inbox.KindUnsupported || string(e.Raw) != want || string(e.Content) != want {
			t.Fatalf("element %d: %+v", i, e)
		}
		if !strings.HasPrefix(e.ExternalID, "raw:") || len(e.ExternalID) != len("raw:")+32 || seen[e.ExternalID] {
			t.Fatalf("element %d: id %q (seen %v)", i, e.ExternalID, seen)
		}
		seen[e.ExternalID] = true
		if again[i].ExternalID != e.ExternalID {
			t.Fatalf("element %d: id not stable: %q then %q", i, e.ExternalID, again[i].ExternalID)
		}
		if e.Sender.Identifier != "" || e.ChatID != "" {
			t.Fatalf("element %d names nobody: %+v", i, e)
		}
	}
}

// media_info that is not an object does not hide the message it belongs to.
func TestParseMediaInfoLenient(t *testing.T) {
	cases := []struct {
		name       string
		mediaInfo  string
		durationMS int64
	}{
		{"object", `{"duration":"4.5","file_size":5120}`, 4500},
		{"string", `"n/a"`, 0},
		{"array", `[]`, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := parseNet(t, NetWhatsApp, `{"messages":[{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":"3EB0PTT","type":"ptt","body":"T2dnUw==","from":"15550009999@c.us","chatId":"15550009999@c.us","media_info":`+c.mediaInfo+`,"time":1700000000}]}`)
			if len(evs) != 1 || evs[0].Kind != inbox.KindVoice || len(evs[0].Attachments) != 1 {
				t.Fatalf("%+v", evs)
			}
			if a := evs[0].Attachments[0]; a.ProviderRef != "3EB0PTT" || a.DurationMS != c.durationMS {
				t.Fatalf("%+v", a)
			}
		})
	}
}

// wappiServer answers Wappi sends: {"status":"done","message_id"} except the
// calls listed in fail (1-based), answered with that HTTP status.
type wappiServer struct {
	mu       sync.Mutex
	n        int
	fail     map[int]int
	accepted []string // text bodies or file URLs Wappi accepted, in order
}

func (s *wappiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p map[string]any
	b, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b, &p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	w.Header().Set("Content-Type", "application/json")
	if st := s.fail[s.n]; st != 0 {
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "2")
		}
		w.WriteHeader(st)
		_, _ = io.WriteString(w, `{"status":"error","detail":"try later"}`)
		return
	}
	what, _ := p["body"].(string)
	if what == "" {
		what, _ = p["url"].(string)
	}
	s.accepted = append(s.accepted, what)
	_, _ = fmt.Fprintf(w, `{"status":"done","timestamp":1700000000,"message_id":"3EB0%04d"}`, len(s.accepted))
}

func TestSendPartFailsNoDuplicate(t *testing.T) {
	long := strings.Repeat("т", 1025) // too long for a caption: sent as its own message first
	file := func(u string) channel.OutMedia {
		return channel.OutMedia{Kind: inbox.KindDocument, URL: u, Filename: "a.pdf"}
	}
	cases := []struct {
		name     string
		fail     map[int]int
		out      channel.Outgoing
		partial  bool
		accepted []string
		attempts int
	}{
		{"500 on the file after the text", map[int]int{2: 500},
			channel.Outgoing{To: "15550009999", Text: long, Attachments: []channel.OutMedia{file("https://files.example/a.pdf")}},
			true, []string{long}, 1},
		{"429 on the second file", map[int]int{2: 429},
			channel.Outgoing{To: "15550009999", Text: "see", Attachments: []channel.OutMedia{file("https://files.example/a.pdf"), file("https://files.example/b.pdf")}},
			true, []string{"https://files.example/a.pdf"}, 1},
		{"500 on the first part is retried whole", map[int]int{1: 500},
			channel.Outgoing{To: "15550009999", Text: long, Attachments: []channel.OutMedia{file("https://files.example/a.pdf")}},
			false, []string{long, "https://files.example/a.pdf"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := &wappiServer{fail: c.fail}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			conf := cfgFor(NetWhatsApp)
			conf.AccountConfig = map[string]any{"api_base_url": ts.URL}
			var res channel.SendResult
			var err error
			attempts := 0
			for attempts = 1; ; attempts++ { // as the outbound worker: retry what is retryable
				res, err = New().Send(context.Background(), conf, c.out)
				if err == nil || !channel.IsRetryable(err) || attempts == 3 {
					break
				}
			}
			if attempts != c.attempts {
				t.Fatalf("attempts %d, want %d (err %v)", attempts, c.attempts, err)
			}
			if strings.Join(srv.accepted, "|") != strings.Join(c.accepted, "|") {
				t.Fatalf("accepted %q, want %q", srv.accepted, c.accepted)
			}
			if !c.partial {
				if err != nil || len(res.ExternalIDs) != len(c.accepted) {
					t.Fatalf("res %+v err %v", res, err)
				}
				return
			}
			var se *channel.SendError
			if !errors.As(err, &se) || se.Code != "partial" || se.Retryable || !strings.Contains(se.Reason, "try later") {
				t.Fatalf("want a partial, non-retryable error, got %#v", err)
			}
			if res.ExternalID != profile+":3EB00001" || len(res.ExternalIDs) != 1 {
				t.Fatalf("ids sent so far: %+v", res)
			}
		})
	}
	// An attachment without a URL is refused before anything goes out.
	srv := &wappiServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	conf := cfgFor(NetWhatsApp)
	conf.AccountConfig = map[string]any{"api_base_url": ts.URL}
	_, err := New().Send(context.Background(), conf, channel.Outgoing{To: "15550009999", Text: long,
		Attachments: []channel.OutMedia{file("https://files.example/a.pdf"), {Kind: inbox.KindImage}}})
	if err == nil || srv.n != 0 {
		t.Fatalf("err %v, %d calls", err, srv.n)
	}
}
