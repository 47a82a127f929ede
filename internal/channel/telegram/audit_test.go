package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// Updates this adapter does not read become placeholders named by their
// update_id, from the user they name (payloads as core.telegram.org/bots/api
// documents them).
func TestParseOtherUpdates(t *testing.T) {
	cases := []struct {
		name       string
		body       string
		wantID     string
		wantSender string
		wantName   string
		wantChat   string
		wantGroup  bool
		wantUnix   int64
	}{
		{"poll_answer by a user",
			`{"update_id":10001,"poll_answer":{"poll_id":"5368324170671202286","user":{"id":4242,"is_bot":false,"first_name":"Li","username":"liwei"},"option_ids":[1]}}`,
			"update:10001", "4242", "Li", "4242", false, 0},
		{"poll_answer by an anonymous chat",
			`{"update_id":10002,"poll_answer":{"poll_id":"5368324170671202286","voter_chat":{"id":-1009876543210,"type":"channel","title":"News"},"option_ids":[0]}}`,
			"update:10002", "-1009876543210", "News", "-1009876543210", false, 0},
		{"inline_query",
			`{"update_id":10003,"inline_query":{"id":"4379126498127","from":{"id":4242,"is_bot":false,"first_name":"Li","last_name":"Wei"},"query":"pizza","offset":""}}`,
			"update:10003", "4242", "Li Wei", "4242", false, 0},
		{"chosen_inline_result",
			`{"update_id":10004,"chosen_inline_result":{"result_id":"1","from":{"id":4242,"is_bot":false,"username":"liwei"},"query":"pizza"}}`,
			"update:10004", "4242", "@liwei", "4242", false, 0},
		{"poll without a user",
			`{"update_id":10005,"poll":{"id":"5368324170671202286","question":"Lunch?","options":[{"text":"Yes","voter_count":1}],"total_voter_count":1,"is_closed":false,"is_anonymous":true,"type":"regular","allows_multiple_answers":false}}`,
			"update:10005", "", "", "", false, 0},
		{"chat_join_request in a supergroup",
			`{"update_id":10006,"chat_join_request":{"chat":{"id":-1001234567890,"type":"supergroup","title":"Ops"},"from":{"id":4242,"is_bot":false,"first_name":"Li"},"user_chat_id":4242,"date":1700000000}}`,
			"update:10006", "4242", "Li", "-1001234567890", true, 1700000000},
		{"message with a field of an unexpected type",
			`{"update_id":10007,"message":{"message_id":"seventy","date":1700000000,"chat":{"id":4242,"type":"private"},"from":{"id":4242,"is_bot":false,"first_name":"Li"},"text":"hi"}}`,
			"update:10007", "4242", "Li", "4242", false, 1700000000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := one(t, c.body)
			if ev.Type != channel.EventMessage || ev.Kind != inbox.KindUnsupported || ev.ExternalID != c.wantID {
				t.Fatalf("type/kind/id %s/%s/%q: %+v", ev.Type, ev.Kind, ev.ExternalID, ev)
			}
			if ev.Sender.Identifier != c.wantSender || ev.Sender.Name != c.wantName {
				t.Fatalf("sender %+v, want %q %q", ev.Sender, c.wantSender, c.wantName)
			}
			if ev.ChatID != c.wantChat || ev.IsGroup != c.wantGroup {
				t.Fatalf("chat %q group %v", ev.ChatID, ev.IsGroup)
			}
			if c.wantUnix != 0 && ev.Timestamp.Unix() != c.wantUnix {
				t.Fatalf("timestamp %v", ev.Timestamp)
			}
			if string(ev.Raw) != c.body || string(ev.Content) != c.body {
				t.Fatal("raw/content must be the update")
			}
			if again := one(t, c.body); again.ExternalID != ev.ExternalID {
				t.Fatalf("id not stable: %q then %q", ev.ExternalID, again.ExternalID)
			}
		})
	}
	// Our own bot's message with a field of an unexpected type stays ours.
	ev := one(t, `{"update_id":10008,"message":{"message_id":31,"date":"1700000000","chat":{"id":-1001234567890,"type":"supergroup","title":"Ops"},"from":{"id":123456789,"is_bot":true,"first_name":"Parley"},"text":"from bot"}}`)
	if ev.Direction != "outbound" || ev.ExternalID != "update:10008" || !ev.Sender.IsBot || ev.ChatID != "-1001234567890" || !ev.IsGroup {
		t.Fatalf("%+v", ev)
	}
	if ev := one(t, `{"update_id":10009,"inline_query":{"id":"1","from":{"id":4242,"is_bot":false,"first_name":"Li"},"query":"x","offset":""}}`); ev.Direction != "inbound" {
		t.Fatalf("%+v", ev)
	}
	// Without a readable update_id the body is refused as a whole.
	for _, body := range []string{`{"message":{"message_id":"x"}}`, `{"update_id":"1","message":{"message_id":"x"}}`, `[1]`} {
		if _, err := New().Parse(cfg(), channel.Request{Body: []byte(body)}); !inbox.IsCode(err, inbox.Invalid) {
			t.Errorf("%s: err %v, want invalid", body, err)
		}
	}
}

// Service messages about members: joins name the new participants (our own
// bot left out); a leave is only a group signal.
func TestParseGroupMembership(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		title string
		want  []string // participant id=name
	}{
		{"members added by an admin",
			`{"update_id":20001,"message":{"message_id":90,"from":{"id":4242,"is_bot":false,"first_name":"Li"},"chat":{"id":-1001234567890,"title":"Ops","type":"supergroup"},"date":1700000300,"new_chat_participant":{"id":5151,"is_bot":false,"first_name":"Ana"},"new_chat_member":{"id":5151,"is_bot":false,"first_name":"Ana"},"new_chat_members":[{"id":5151,"is_bot":false,"first_name":"Ana","last_name":"Diaz","username":"anad"},{"id":123456789,"is_bot":true,"first_name":"Parley","username":"parley_bot"},{"id":777,"is_bot":true,"first_name":"Helper"}]}}`,
			"Ops", []string{"5151=Ana Diaz", "777=Helper"}},
		{"user joined by link (basic group)",
			`{"update_id":20002,"message":{"message_id":91,"from":{"id":6161,"is_bot":false,"username":"bo"},"chat":{"id":-4001,"title":"Team","type":"group","all_members_are_administrators":true},"date":1700000301,"new_chat_members":[{"id":6161,"is_bot":false,"username":"bo"}]}}`,
			"Team", []string{"6161=@bo"}},
		{"member left",
			`{"update_id":20003,"message":{"message_id":92,"from":{"id":5151,"is_bot":false,"first_name":"Ana"},"chat":{"id":-1001234567890,"title":"Ops","type":"supergroup"},"date":1700000302,"left_chat_participant":{"id":5151,"is_bot":false,"first_name":"Ana"},"left_chat_member":{"id":5151,"is_bot":false,"first_name":"Ana"}}}`,
			"Ops", nil},
		{"title changed",
			`{"update_id":20004,"message":{"message_id":93,"from":{"id":4242,"is_bot":false,"first_name":"Li"},"chat":{"id":-1001234567890,"title":"Ops 2","type":"supergroup"},"date":1700000303,"new_chat_title":"Ops 2"}}`,
			"Ops 2", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := one(t, c.body)
			if ev.Type != channel.EventGroupInfo || !ev.IsGroup || ev.GroupTitle != c.title || !strings.HasPrefix(ev.ChatID, "-") {
				t.Fatalf("%+v", ev)
			}
			var got []string
			for _, p := range ev.Participants {
				got = append(got, p.Identifier+"="+p.Name)
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("participants %v, want %v", got, c.want)
			}
		})
	}
}

// tgServer answers Bot API send calls: 200 with a new message id, except
// the calls listed in fail (1-based), answered with that HTTP status.
type tgServer struct {
	mu    sync.Mutex
	n     int
	fail  map[int]int
	texts []string // texts (or media URLs) Telegram accepted, in order
}

func (s *tgServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p map[string]any
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	w.Header().Set("Content-Type", "application/json")
	switch s.fail[s.n] {
	case http.StatusTooManyRequests:
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}`)
		return
	case http.StatusInternalServerError:
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"ok":false,"error_code":500,"description":"Internal Server Error"}`)
		return
	}
	what, _ := p["text"].(string)
	if what == "" {
		what, _ = p["photo"].(string)
	}
	s.texts = append(s.texts, what)
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": map[string]any{"message_id": 1000 + len(s.texts), "chat": map[string]any{"id": 4242}}})
}

// deliver sends like the outbound worker: retryable errors are retried (up to 3 attempts).
func deliver(a channel.Adapter, c channel.Config, out channel.Outgoing) (res channel.SendResult, attempts int, err error) {
	for attempts = 1; ; attempts++ {
		res, err = a.Send(context.Background(), c, out)
		if err == nil || !channel.IsRetryable(err) || attempts == 3 {
			return res, attempts, err
		}
	}
}

func TestSendSplitPartFailsNoDuplicate(t *testing.T) {
	part1 := strings.Repeat("a", MaxTextLen)
	text := part1 + strings.Repeat("b", 10) // two parts
	cases := []struct {
		name     string
		fail     map[int]int
		out      channel.Outgoing
		partial  bool
		accepted []string
		attempts int
	}{
		{"500 on part 2", map[int]int{2: 500}, channel.Outgoing{To: "4242", Text: text}, true, []string{part1}, 1},
		{"429 on part 2", map[int]int{2: 429}, channel.Outgoing{To: "4242", Text: text}, true, []string{part1}, 1},
		{"500 on the photo after the text", map[int]int{2: 500},
			channel.Outgoing{To: "4242", Text: strings.Repeat("c", MaxCaptionLen+1), Attachments: []channel.OutMedia{{Kind: inbox.KindImage, URL: "https://files.example/a.jpg"}}},
			true, []string{strings.Repeat("c", MaxCaptionLen+1)}, 1},
		{"429 on part 1 is retried whole", map[int]int{1: 429}, channel.Outgoing{To: "4242", Text: text}, false, []string{part1, "bbbbbbbbbb"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := &tgServer{fail: c.fail}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			conf := cfg()
			conf.Config = map[string]any{"api_base_url": ts.URL}
			res, attempts, err := deliver(New(), conf, c.out)
			if attempts != c.attempts {
				t.Fatalf("attempts %d, want %d (err %v)", attempts, c.attempts, err)
			}
			if strings.Join(srv.texts, "|") != strings.Join(c.accepted, "|") {
				t.Fatalf("accepted %d parts %q..., want %d", len(srv.texts), srv.texts, len(c.accepted))
			}
			if !c.partial {
				if err != nil || len(res.ExternalIDs) != len(c.accepted) {
					t.Fatalf("res %+v err %v", res, err)
				}
				return
			}
			var se *channel.SendError
			if !errors.As(err, &se) || se.Code != "partial" || se.Retryable {
				t.Fatalf("want a partial, non-retryable error, got %#v", err)
			}
			if res.ExternalID != "4242:1001" || len(res.ExternalIDs) != 1 || res.ExternalIDs[0] != "4242:1001" {
				t.Fatalf("ids sent so far: %+v", res)
			}
		})
	}
	// An attachment without a URL is refused before anything goes out.
	srv := &tgServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	conf := cfg()
	conf.Config = map[string]any{"api_base_url": ts.URL}
	_, err := New().Send(context.Background(), conf, channel.Outgoing{To: "4242", Text: strings.Repeat("d", 2000),
		Attachments: []channel.OutMedia{{Kind: inbox.KindImage}}})
	if err == nil || srv.n != 0 {
		t.Fatalf("err %v, %d calls", err, srv.n)
	}
}
