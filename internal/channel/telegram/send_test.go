package telegram

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/providersim/telegramsim"
)

func simCfg(t *testing.T) (*telegramsim.Server, channel.Config) {
	t.Helper()
	sim := telegramsim.New(testToken)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c := cfg()
	c.Config = map[string]any{"api_base_url": srv.URL}
	c.HTTPClient = srv.Client()
	return sim, c
}

func TestSendText(t *testing.T) {
	sim, c := simCfg(t)
	res, err := New().Send(context.Background(), c, channel.Outgoing{MessageID: "m1", To: "-1001234567890", Text: "Hi ✓", ReplyToID: "-1001234567890:77"})
	if err != nil {
		t.Fatal(err)
	}
	calls := sim.Calls("sendMessage")
	if len(calls) != 1 {
		t.Fatalf("calls %+v", calls)
	}
	p := calls[0].Params
	if p["text"] != "Hi ✓" || p["chat_id"].(interface{ String() string }).String() != "-1001234567890" {
		t.Fatalf("params %+v", p)
	}
	rp, _ := p["reply_parameters"].(map[string]any)
	if rp == nil || rp["message_id"].(interface{ String() string }).String() != "77" {
		t.Fatalf("reply_parameters %+v", p["reply_parameters"])
	}
	if res.ExternalID != "-1001234567890:1001" || len(res.ExternalIDs) != 1 || res.Status != "sent" {
		t.Fatalf("result %+v", res)
	}
}

func TestSendSplitsLongText(t *testing.T) {
	sim, c := simCfg(t)
	text := strings.Repeat("слово ", 1500) // 9000 chars
	res, err := New().Send(context.Background(), c, channel.Outgoing{To: "4242", Text: text, ReplyToID: "4242:5"})
	if err != nil {
		t.Fatal(err)
	}
	calls := sim.Calls("sendMessage")
	if len(calls) != 3 || len(res.ExternalIDs) != 3 {
		t.Fatalf("want 3 parts, got %d calls, %v", len(calls), res.ExternalIDs)
	}
	var joined strings.Builder
	for i, call := range calls {
		part := call.Params["text"].(string)
		if channel.TextLen(part, "utf16") > MaxTextLen {
			t.Fatalf("part %d too long", i)
		}
		if (call.Params["reply_parameters"] != nil) != (i == 0) {
			t.Fatalf("only the first part quotes (part %d)", i)
		}
		joined.WriteString(part)
	}
	if joined.String() != text {
		t.Fatal("parts do not join back to the text")
	}
}

func TestSplitText(t *testing.T) {
	emoji := strings.Repeat("😀", 3000) // 6000 UTF-16 units
	cases := []struct {
		name  string
		in    string
		max   int
		parts int
	}{
		{"empty", "", 10, 0},
		{"fits", "hello", 10, 1},
		{"exact", strings.Repeat("a", 4096), 4096, 1},
		{"one over", strings.Repeat("a", 4097), 4096, 2},
		{"surrogates", emoji, 4096, 2},
		{"prefers newline", strings.Repeat("a", 90) + "\n" + strings.Repeat("b", 50), 100, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parts := SplitText(c.in, c.max)
			if len(parts) != c.parts {
				t.Fatalf("%d parts, want %d", len(parts), c.parts)
			}
			if strings.Join(parts, "") != c.in {
				t.Fatal("lossy split")
			}
			for _, p := range parts {
				if channel.TextLen(p, "utf16") > c.max || !utf8.ValidString(p) {
					t.Fatalf("bad part %q", p)
				}
			}
		})
	}
	if p := SplitText(strings.Repeat("a", 90)+"\n"+strings.Repeat("b", 50), 100); !strings.HasSuffix(p[0], "\n") {
		t.Fatalf("did not cut at newline: %q", p[0])
	}
}

func TestSendMediaAndCaption(t *testing.T) {
	sim, c := simCfg(t)
	res, err := New().Send(context.Background(), c, channel.Outgoing{To: "4242", Text: "see attached",
		Attachments: []channel.OutMedia{{Kind: "image", MimeType: "image/png", URL: "https://files.example/p.png"},
			{Kind: "document", MimeType: "application/pdf", URL: "https://files.example/d.pdf"}}})
	if err != nil {
		t.Fatal(err)
	}
	photos, docs := sim.Calls("sendPhoto"), sim.Calls("sendDocument")
	if len(photos) != 1 || len(docs) != 1 || len(sim.Calls("sendMessage")) != 0 {
		t.Fatalf("calls %+v", sim.Requests())
	}
	if photos[0].Params["photo"] != "https://files.example/p.png" || photos[0].Params["caption"] != "see attached" || docs[0].Params["caption"] != nil {
		t.Fatalf("params %+v %+v", photos[0].Params, docs[0].Params)
	}
	if len(res.ExternalIDs) != 2 {
		t.Fatal(res)
	}

	// A caption over 1024 goes as a separate text message first.
	sim.Reset()
	long := strings.Repeat("x", 1500)
	if _, err := New().Send(context.Background(), c, channel.Outgoing{To: "4242", Text: long,
		Attachments: []channel.OutMedia{{Kind: "voice", URL: "https://files.example/v.ogg"}}}); err != nil {
		t.Fatal(err)
	}
	reqs := sim.Requests()
	if len(reqs) != 2 || reqs[0].Method != "sendMessage" || reqs[1].Method != "sendVoice" || reqs[1].Params["caption"] != nil {
		t.Fatalf("reqs %+v", reqs)
	}
}

func TestSendReaction(t *testing.T) {
	sim, c := simCfg(t)
	if _, err := New().Send(context.Background(), c, channel.Outgoing{To: "4242", Reaction: &channel.OutReaction{TargetID: "4242:9", Emoji: "👍"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := New().Send(context.Background(), c, channel.Outgoing{To: "4242", Reaction: &channel.OutReaction{TargetID: "4242:9"}}); err != nil {
		t.Fatal(err)
	}
	calls := sim.Calls("setMessageReaction")
	if len(calls) != 2 {
		t.Fatal(calls)
	}
	r0 := calls[0].Params["reaction"].([]any)
	r1 := calls[1].Params["reaction"].([]any)
	if len(r0) != 1 || r0[0].(map[string]any)["emoji"] != "👍" || len(r1) != 0 {
		t.Fatalf("%v %v", r0, r1)
	}
}

func TestSendErrors(t *testing.T) {
	sim, c := simCfg(t)
	a := New()
	ctx := context.Background()

	sim.FailNext(1, 429, 7)
	_, err := a.Send(ctx, c, channel.Outgoing{To: "1", Text: "x"})
	var se *channel.SendError
	if !errors.As(err, &se) || !se.Retryable || se.RetryAfter != 7*time.Second || se.HTTPStatus != 429 {
		t.Fatalf("429: %#v", err)
	}

	sim.FailNext(1, 500, 0)
	_, err = a.Send(ctx, c, channel.Outgoing{To: "1", Text: "x"})
	if !errors.As(err, &se) || !se.Retryable {
		t.Fatalf("500: %#v", err)
	}

	sim.Block("99")
	_, err = a.Send(ctx, c, channel.Outgoing{To: "99", Text: "x"})
	if !errors.As(err, &se) || se.Retryable || se.HTTPStatus != 403 || !strings.Contains(se.Reason, "blocked") {
		t.Fatalf("403: %#v", err)
	}

	// Wrong token → 401, and the token never shows in the error.
	bad := c
	bad.Secrets = map[string]string{"bot_token": "1:wrongwrongwrong"}
	_, err = a.Send(ctx, bad, channel.Outgoing{To: "1", Text: "x"})
	if !errors.As(err, &se) || se.Retryable || strings.Contains(err.Error(), "wrongwrong") {
		t.Fatalf("401: %v", err)
	}

	// Network failure: retryable, no token in the message.
	down := c
	down.Config = map[string]any{"api_base_url": "http://127.0.0.1:1"}
	_, err = a.Send(ctx, down, channel.Outgoing{To: "1", Text: "x"})
	if err == nil || !channel.IsRetryable(err) || strings.Contains(err.Error(), testToken) {
		t.Fatalf("network: %v", err)
	}
}

func TestFetchMedia(t *testing.T) {
	sim, c := simCfg(t)
	sim.AddFile("VOICE1", telegramsim.File{Path: "voice/file_3.oga", Data: []byte("OggS-data")})
	body, mime, err := New().FetchMedia(context.Background(), c, "VOICE1")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	data, _ := io.ReadAll(body)
	if string(data) != "OggS-data" || !strings.HasPrefix(mime, "audio/ogg") {
		t.Fatalf("%q %q", data, mime)
	}
	_, _, err = New().FetchMedia(context.Background(), c, "nope")
	if err == nil || strings.Contains(err.Error(), testToken) {
		t.Fatalf("unknown file: %v", err)
	}
}

func TestDeliverAuthenticatesAndRetries(t *testing.T) {
	a := New()
	c := cfg()
	var got []channel.Event
	fails := 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := channel.Request{Method: r.Method, Header: r.Header, Body: body}
		if err := a.Verify(c, req); err != nil {
			w.WriteHeader(401)
			return
		}
		if fails > 0 {
			fails--
			w.WriteHeader(503)
			return
		}
		evs, err := a.Parse(c, req)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		got = append(got, evs...)
	}))
	defer srv.Close()
	li := telegramsim.User{ID: 4242, FirstName: "Ли"}
	upd := telegramsim.MessageUpdate(telegramsim.Msg{UpdateID: 1, MessageID: 5, Chat: telegramsim.Chat{ID: -1001234567890, Type: "supergroup", Title: "Ops"}, From: &li, Text: "Привет"})
	if err := telegramsim.Deliver(context.Background(), srv.URL, "s3cr3t_Value-1", upd); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Text != "Привет" || got[0].Sender.Name != "Ли" {
		t.Fatalf("%+v", got)
	}
	if err := telegramsim.DeliverWith(context.Background(), telegramsim.DeliverOptions{MaxAttempts: 2, Backoff: time.Millisecond}, srv.URL, "wrong", upd); err == nil {
		t.Fatal("wrong secret must fail")
	}
}

// TestAnswerCallbackQuery: a pressed inline button, parsed from the update
// as the Bot API documents it, is answered with answerCallbackQuery.
func TestAnswerCallbackQuery(t *testing.T) {
	sim, c := simCfg(t)
	body := `{"update_id":21,"callback_query":{"id":"4382bfdwdsb323b2d9","from":{"id":4242,"is_bot":false,"first_name":"Li"},` +
		`"message":{"message_id":40,"date":1,"chat":{"id":4242,"type":"private"},"text":"pick"},"chat_instance":"-1","data":"opt_2"}}`
	evs, err := New().Parse(c, channel.Request{Method: "POST", Body: []byte(body)})
	if err != nil || len(evs) != 1 {
		t.Fatalf("parse: %v %+v", err, evs)
	}
	if evs[0].QueryID != "4382bfdwdsb323b2d9" {
		t.Fatalf("query id %q", evs[0].QueryID)
	}
	if err := New().Answer(context.Background(), c, evs[0]); err != nil {
		t.Fatal(err)
	}
	calls := sim.Calls("answerCallbackQuery")
	if len(calls) != 1 || calls[0].Params["callback_query_id"] != "4382bfdwdsb323b2d9" {
		t.Fatalf("calls %+v", calls)
	}
	// An ordinary message has nothing to answer.
	if err := New().Answer(context.Background(), c, channel.Event{Type: channel.EventMessage}); err != nil || len(sim.Calls("answerCallbackQuery")) != 1 {
		t.Fatalf("answered a plain message: %v", err)
	}
	// The provider's refusal comes back as an error.
	if err := New().Answer(context.Background(), c, channel.Event{QueryID: " "}); err == nil {
		t.Fatal("refused answer reported no error")
	}
}
