package wappi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/providersim/wappisim"
)

const (
	profile = "0a1b2c3d-4e5f"
	apiTok  = "acc0untT0ken"
	hookSec = "hook-secret-1"
)

func cfgFor(net string) channel.Config {
	return channel.Config{Kind: Kind,
		Config:         map[string]any{"profile_id": profile, "network": net},
		Secrets:        map[string]string{"webhook_auth": hookSec},
		AccountSecrets: map[string]string{"api_token": apiTok}}
}

func parseNet(t *testing.T, net, body string) []channel.Event {
	t.Helper()
	evs, err := New().Parse(cfgFor(net), channel.Request{Body: []byte(body)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return evs
}

func TestVerify(t *testing.T) {
	a := New()
	cases := []struct {
		name   string
		secret string
		header string
		ok     bool
	}{
		{"match", hookSec, hookSec, true},
		{"mismatch", hookSec, "hook-secret-2", false},
		{"missing", hookSec, "", false},
		{"bearer prefix is not the value", hookSec, "Bearer " + hookSec, false},
		// Wappi signs nothing: without a configured secret nothing proves
		// a webhook comes from Wappi.
		{"no secret configured", "", "", false},
		{"no secret configured, header sent", "", "anything", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := cfgFor(NetWhatsApp)
			cfg.Secrets = map[string]string{"webhook_auth": c.secret}
			h := http.Header{}
			if c.header != "" {
				h.Set("Authorization", c.header)
			}
			err := a.Verify(cfg, channel.Request{Header: h, Body: []byte(`{"messages":[]}`)})
			if (err == nil) != c.ok || (err != nil && !inbox.IsCode(err, inbox.Unauthorized)) {
				t.Fatalf("err %v", err)
			}
		})
	}
}

func TestParseDocumentedIncoming(t *testing.T) {
	evs := parseNet(t, NetWhatsApp, `{"messages":[{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":"3EB0FFEE","type":"chat",
 "body":"hi","from":"15550009999@c.us","chatId":"15550009999@c.us","senderName":"Tom","time":1700000000}]}`)
	if len(evs) != 1 {
		t.Fatal(evs)
	}
	ev := evs[0]
	if ev.Type != channel.EventMessage || ev.ExternalID != "0a1b2c3d-4e5f:3EB0FFEE" || ev.ChatID != "15550009999" || ev.IsGroup ||
		ev.Direction != "inbound" || ev.Kind != inbox.KindText || ev.Text != "hi" || ev.Sender.Name != "Tom" ||
		ev.Sender.Identifier != "15550009999" || ev.Sender.Phone != "+15550009999" || ev.Timestamp.Unix() != 1700000000 {
		t.Fatalf("%+v", ev)
	}
}

func TestParseCases(t *testing.T) {
	cases := []struct {
		name  string
		net   string
		body  string
		check func(t *testing.T, evs []channel.Event)
	}{
		{"envelope single object, delivery status", NetWhatsApp,
			`{"messages":{"wh_type":"delivery_status","profile_id":"0a1b2c3d-4e5f","id":"3EB0AA","chat_id":"15550009999@c.us","status":"delivered","time":"1700000050"}}`,
			func(t *testing.T, evs []channel.Event) {
				ev := evs[0]
				if ev.Type != channel.EventStatus || ev.TargetID != "0a1b2c3d-4e5f:3EB0AA" || ev.Status != inbox.MsgDelivered || ev.ExternalID == ev.TargetID {
					t.Fatalf("%+v", ev)
				}
			}},
		{"bare event, temporary ban → failed", NetWhatsApp,
			`{"wh_type":"delivery_status","profile_id":"0a1b2c3d-4e5f","id":"3EB0AB","chat_id":"15550009999@c.us","status":"temporary ban"}`,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Status != inbox.MsgFailed || !strings.Contains(evs[0].Error, "temporary ban") {
					t.Fatalf("%+v", evs[0])
				}
			}},
		{"statuses pending read undelivered in one batch", NetWhatsApp,
			`[{"wh_type":"delivery_status","id":"A","status":"pending"},{"wh_type":"delivery_status","id":"A","status":"read"},{"wh_type":"delivery_status","id":"B","status":"undelivered"},{"wh_type":"delivery_status","id":"C","status":"weird"}]`,
			func(t *testing.T, evs []channel.Event) {
				if len(evs) != 3 || evs[0].Status != inbox.MsgSent || evs[1].Status != inbox.MsgRead || evs[2].Status != inbox.MsgFailed {
					t.Fatalf("%+v", evs)
				}
			}},
		{"group message with s.whatsapp.net member", NetWhatsApp,
			`{"messages":[{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":"G1","type":"chat","body":"\u043f\u0440\u0438\u0432\u0435\u0442 \ud83d\ude00","from":"15551112222@s.whatsapp.net","chatId":"120363012345678901@g.us","senderName":"Ana","time":1700000001}]}`,
			func(t *testing.T, evs []channel.Event) {
				ev := evs[0]
				if !ev.IsGroup || ev.ChatID != "120363012345678901@g.us" || ev.Sender.Identifier != "15551112222" || ev.GroupTitle != "" || ev.Text != "привет 😀" {
					t.Fatalf("%+v", ev)
				}
			}},
		{"image: base64 body never text, caption is", NetWhatsApp,
			`{"messages":[{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":"IMG1","type":"image","body":"` + wappisim.Thumbnail + `","caption":"receipt","mimetype":"image/jpeg","from":"15550009999@c.us","chatId":"15550009999@c.us","time":1700000002}]}`,
			func(t *testing.T, evs []channel.Event) {
				ev := evs[0]
				if ev.Kind != inbox.KindImage || ev.Text != "receipt" || len(ev.Attachments) != 1 || ev.Attachments[0].ProviderRef != "IMG1" || ev.Attachments[0].MimeType != "image/jpeg" {
					t.Fatalf("%+v", ev)
				}
			}},
		{"ptt voice with duration and file_link on WhatsApp keeps the id", NetWhatsApp,
			`{"messages":[{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":"PTT1","type":"ptt","body":"T2dnUw==","file_link":"https://wappi.pro/f/x","media_info":{"duration":7},"from":"15550009999@c.us","chatId":"15550009999@c.us","time":1700000003}]}`,
			func(t *testing.T, evs []channel.Event) {
				ev := evs[0]
				if ev.Kind != inbox.KindVoice || ev.Text != "" || ev.Attachments[0].DurationMS != 7000 || ev.Attachments[0].ProviderRef != "PTT1" {
					t.Fatalf("%+v", ev)
				}
			}},
		{"document name", NetWhatsApp,
			`{"messages":[{"wh_type":"incoming_message","id":"D1","type":"document","body":"JVBERi0=","file_name":"invoice.pdf","mimetype":"application/pdf","from":"15550009999@c.us","time":1700000004}]}`,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Kind != inbox.KindDocument || evs[0].Attachments[0].Filename != "invoice.pdf" || evs[0].Text != "" {
					t.Fatalf("%+v", evs[0])
				}
			}},
		{"reaction and removal", NetWhatsApp,
			`{"messages":[{"wh_type":"incoming_message","id":"R1","type":"reaction","body":"\ud83d\udc4d","stanza_id":"3EB0OUR","from":"15550009999@c.us","time":1700000005},{"wh_type":"incoming_message","id":"R2","type":"reaction","body":"","stanza_id":"3EB0OUR","from":"15550009999@c.us","time":1700000006}]}`,
			func(t *testing.T, evs []channel.Event) {
				if len(evs) != 2 || evs[0].Type != channel.EventReaction || evs[0].Emoji != "👍" || evs[0].TargetID != "0a1b2c3d-4e5f:3EB0OUR" || evs[1].Emoji != "" {
					t.Fatalf("%+v", evs)
				}
			}},
		{"reply", NetWhatsApp,
			`{"messages":[{"wh_type":"incoming_message","id":"Q1","type":"chat","body":"yes","isReply":"true","stanza_id":"3EB0OLD","from":"15550009999@c.us","time":1700000007}]}`,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].ReplyToID != "0a1b2c3d-4e5f:3EB0OLD" {
					t.Fatalf("%+v", evs[0])
				}
			}},
		{"location", NetWhatsApp,
			`{"messages":[{"wh_type":"incoming_message","id":"L1","type":"location","body":"","latitude":"55.75","longitude":37.61,"from":"15550009999@c.us","time":1700000008}]}`,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Kind != inbox.KindLocation || evs[0].Location.Latitude != 55.75 || evs[0].Location.Longitude != 37.61 {
					t.Fatalf("%+v", evs[0])
				}
			}},
		{"vcard", NetWhatsApp,
			`{"messages":[{"wh_type":"incoming_message","id":"V1","type":"vcard","body":"BEGIN:VCARD\nVERSION:3.0\nFN:Ana Diaz\nitem1.TEL;waid=15552223333:+1 555 222 3333\nEND:VCARD","from":"15550009999@c.us","time":1700000009}]}`,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Kind != inbox.KindContacts || evs[0].Text != "Ana Diaz" || !strings.Contains(string(evs[0].Content), "+1 555 222 3333") {
					t.Fatalf("%+v %s", evs[0], evs[0].Content)
				}
			}},
		{"poll unsupported, buttons interactive", NetWhatsApp,
			`{"messages":[{"wh_type":"incoming_message","id":"P1","type":"poll","body":"Q?","from":"15550009999@c.us","time":1},{"wh_type":"incoming_message","id":"B1","type":"buttons_response","body":"Yes","from":"15550009999@c.us","time":1}]}`,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Kind != inbox.KindUnsupported || len(evs[0].Content) == 0 || evs[1].Kind != inbox.KindInteractive || evs[1].Text != "Yes" {
					t.Fatalf("%+v", evs)
				}
			}},
		{"echo api is outbound with the send key", NetWhatsApp,
			`{"messages":[{"wh_type":"outgoing_message_api","profile_id":"0a1b2c3d-4e5f","id":"3EB0SENT","type":"chat","body":"hello","from":"15550001111@c.us","to":"15550009999@c.us","chatId":"15550009999@c.us","is_me":true,"from_where":"api","time":1700000010}]}`,
			func(t *testing.T, evs []channel.Event) {
				ev := evs[0]
				if ev.Direction != "outbound" || ev.ExternalID != "0a1b2c3d-4e5f:3EB0SENT" || ev.ChatID != "15550009999" || ev.Recipient.Identifier != "15550009999" || ev.Sender.Identifier != "15550001111" {
					t.Fatalf("%+v", ev)
				}
			}},
		{"typed on phone is outbound to the customer", NetWhatsApp,
			`{"messages":[{"wh_type":"outgoing_message_phone","profile_id":"0a1b2c3d-4e5f","id":"3EB0PH","type":"chat","body":"on my way","from":"15550001111@c.us","to":"15550009999@c.us","time":1700000011}]}`,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Direction != "outbound" || evs[0].ChatID != "15550009999" {
					t.Fatalf("%+v", evs[0])
				}
			}},
		{"other profile skipped", NetWhatsApp,
			`{"messages":[{"wh_type":"incoming_message","profile_id":"ffff-0000","id":"X","type":"chat","body":"not ours","from":"1@c.us","time":1}]}`,
			func(t *testing.T, evs []channel.Event) {
				if len(evs) != 0 {
					t.Fatalf("%+v", evs)
				}
			}},
		{"authorization status", NetWhatsApp,
			`{"messages":[{"wh_type":"authorization_status","profile_id":"0a1b2c3d-4e5f","status":"online","time":1700000012}]}`,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Type != channel.EventAuth || evs[0].AuthState != "authorized" || evs[0].AuthDetail != "online" {
					t.Fatalf("%+v", evs[0])
				}
			}},
		{"application status offline", NetWhatsApp,
			`{"messages":[{"wh_type":"application_status","profile_id":"0a1b2c3d-4e5f","status":"offline"}]}`,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].AuthState != "unauthorized" {
					t.Fatalf("%+v", evs[0])
				}
			}},
		{"incoming call", NetWhatsApp,
			`{"messages":{"wh_type":"incoming_call","profile_id":"0a1b2c3d-4e5f","id":"CALL1","from":"15550009999@c.us","time":1700000013}}`,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Kind != inbox.KindUnsupported || evs[0].ChatID != "15550009999" || !strings.Contains(string(evs[0].Content), `"call"`) {
					t.Fatalf("%+v", evs[0])
				}
			}},
		{"telegram private: numeric ids keyed by chat", NetTelegram,
			`{"messages":[{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":15,"type":"text","body":"Привет","from":"555001","chatId":555001,"chat_type":"user","senderName":"Ivan","username":"ivan_p","time":1700000014}]}`,
			func(t *testing.T, evs []channel.Event) {
				ev := evs[0]
				if ev.ExternalID != "0a1b2c3d-4e5f:555001:15" || ev.IsGroup || ev.Text != "Привет" || ev.Sender.Phone != "" || ev.Sender.Name != "Ivan" {
					t.Fatalf("%+v", ev)
				}
			}},
		{"telegram group", NetTelegram,
			`{"messages":[{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":16,"type":"text","body":"hi all","from":"555002","chatId":"-1001987654321","chat_type":"chat","senderName":"Olga","time":1700000015}]}`,
			func(t *testing.T, evs []channel.Event) {
				if !evs[0].IsGroup || evs[0].ChatID != "-1001987654321" || evs[0].Sender.Identifier != "555002" || evs[0].GroupTitle != "" {
					t.Fatalf("%+v", evs[0])
				}
			}},
		{"telegram media uses file_link", NetTelegram,
			`{"messages":[{"wh_type":"incoming_message","id":17,"type":"image","body":"aGVsbG8=","file_link":"https://wappi.pro/tg/f/abc","from":"555001","chatId":"555001","chat_type":"user","time":1700000016}]}`,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Attachments[0].ProviderRef != "https://wappi.pro/tg/f/abc" || evs[0].Text != "" {
					t.Fatalf("%+v", evs[0])
				}
			}},
		{"max: negative private id, isGroup string, ms time", NetMax,
			`{"messages":[{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":"900","type":"text","body":"hey","from":"-70001","chatId":"-70001","isGroup":"false","time":1700000017123}]}`,
			func(t *testing.T, evs []channel.Event) {
				ev := evs[0]
				if ev.IsGroup || ev.Timestamp.UnixMilli() != 1700000017123 || ev.ExternalID != "0a1b2c3d-4e5f:-70001:900" {
					t.Fatalf("%+v", ev)
				}
			}},
		{"max group by isGroup 1", NetMax,
			`{"messages":[{"wh_type":"incoming_message","id":"901","type":"text","body":"x","from":"-1","chatId":"-2","isGroup":1,"time":1}]}`,
			func(t *testing.T, evs []channel.Event) {
				if !evs[0].IsGroup {
					t.Fatalf("%+v", evs[0])
				}
			}},
		{"edited", NetWhatsApp,
			`{"messages":[{"wh_type":"incoming_message","id":"E1","type":"chat","body":"fixed","is_edited":true,"from":"15550009999@c.us","time":1}]}`,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Type != channel.EventEdit || evs[0].TargetID != "0a1b2c3d-4e5f:E1" || evs[0].Text != "fixed" {
					t.Fatalf("%+v", evs[0])
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := parseNet(t, c.net, c.body)
			if len(evs) > 0 && len(evs[0].Raw) == 0 {
				t.Fatal("raw missing")
			}
			c.check(t, evs)
		})
	}
}

func TestParseInvalid(t *testing.T) {
	if _, err := New().Parse(cfgFor(NetWhatsApp), channel.Request{Body: []byte(`{"messages":[`)}); err == nil {
		t.Fatal("want error")
	}
}

type env struct {
	sim *wappisim.Server
	srv *httptest.Server
}

func newSim(t *testing.T, net string) (*env, channel.Config) {
	t.Helper()
	sim := wappisim.New(apiTok)
	srv := httptest.NewServer(sim)
	sim.SetBaseURL(srv.URL)
	t.Cleanup(func() { sim.Close(); srv.Close() })
	sim.AddProfile(wappisim.Profile{ID: profile, Network: net, Phone: "15550001111"})
	c := cfgFor(net)
	c.AccountConfig = map[string]any{"api_base_url": srv.URL}
	c.HTTPClient = srv.Client()
	return &env{sim: sim, srv: srv}, c
}

func TestSendText(t *testing.T) {
	e, c := newSim(t, NetWhatsApp)
	res, err := New().Send(context.Background(), c, channel.Outgoing{To: "15550009999", Text: "Здравствуйте"})
	if err != nil {
		t.Fatal(err)
	}
	calls := e.sim.Calls("/sync/message/send")
	if len(calls) != 1 || calls[0].Prefix != "/api" || calls[0].ProfileID != profile ||
		calls[0].Body["recipient"] != "15550009999" || calls[0].Body["body"] != "Здравствуйте" {
		t.Fatalf("%+v", calls)
	}
	if !strings.HasPrefix(res.ExternalID, profile+":3EB0") {
		t.Fatal(res)
	}
}

func TestSendEchoMatchesSendID(t *testing.T) {
	e, c := newSim(t, NetWhatsApp)
	var mu sync.Mutex
	var echoes []channel.Event
	got := make(chan struct{}, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := channel.Request{Header: r.Header, Body: body}
		if err := New().Verify(c, req); err != nil {
			w.WriteHeader(401)
			return
		}
		evs, _ := New().Parse(c, req)
		mu.Lock()
		echoes = append(echoes, evs...)
		mu.Unlock()
		got <- struct{}{}
	}))
	defer hook.Close()
	if err := New().SetWebhook(context.Background(), c, hook.URL, hookSec); err != nil {
		t.Fatal(err)
	}
	p, _ := e.sim.Profile(profile)
	p.EmitEchoes = true
	e.sim.AddProfile(p)
	res, err := New().Send(context.Background(), c, channel.Outgoing{To: "15550009999", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no echo")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(echoes) != 1 || echoes[0].ExternalID != res.ExternalID || echoes[0].Direction != "outbound" || echoes[0].ChatID != "15550009999" {
		t.Fatalf("send %s, echo %+v", res.ExternalID, echoes)
	}
}

func TestSendReplyReactionFile(t *testing.T) {
	e, c := newSim(t, NetTelegram)
	a := New()
	ctx := context.Background()
	res, err := a.Send(ctx, c, channel.Outgoing{To: "555001", Text: "answer", ReplyToID: profile + ":555001:15"})
	if err != nil {
		t.Fatal(err)
	}
	r := e.sim.Calls("/sync/message/reply")
	if len(r) != 1 || r[0].Prefix != "/tapi" || r[0].Body["message_id"] != "15" || r[0].Body["body"] != "answer" {
		t.Fatalf("%+v", r)
	}
	if !strings.HasPrefix(res.ExternalID, profile+":555001:") {
		t.Fatal(res)
	}
	if _, err := a.Send(ctx, c, channel.Outgoing{To: "555001", Reaction: &channel.OutReaction{TargetID: profile + ":555001:15", Emoji: "🔥"}}); err != nil {
		t.Fatal(err)
	}
	rc := e.sim.Calls("/sync/message/reaction")
	if len(rc) != 1 || rc[0].Body["body"] != "🔥" || rc[0].Body["recipient"] != "555001" {
		t.Fatalf("%+v", rc)
	}
	res, err = a.Send(ctx, c, channel.Outgoing{To: "555001", Text: "doc", Attachments: []channel.OutMedia{{URL: "https://files.example/a.pdf", Filename: "a.pdf"}}})
	if err != nil || len(res.ExternalIDs) != 1 {
		t.Fatal(err, res)
	}
	f := e.sim.Calls("/sync/message/file/url/send")
	if len(f) != 1 || f[0].Body["caption"] != "doc" || f[0].Body["file_name"] != "a.pdf" || f[0].Body["url"] != "https://files.example/a.pdf" {
		t.Fatalf("%+v", f)
	}
}

func TestSendMaxPrefix(t *testing.T) {
	e, c := newSim(t, NetMax)
	if _, err := New().Send(context.Background(), c, channel.Outgoing{To: "-70001", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if e.sim.Calls("/sync/message/send")[0].Prefix != "/maxapi" {
		t.Fatal("prefix")
	}
	c.Config["max_prefix"] = "/apimax"
	if _, err := New().Send(context.Background(), c, channel.Outgoing{To: "-70001", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if calls := e.sim.Calls("/sync/message/send"); calls[1].Prefix != "/apimax" || calls[1].Body["chat_id"] != "-70001" {
		t.Fatalf("%+v", calls[1])
	}
}

func TestSendErrors(t *testing.T) {
	e, c := newSim(t, NetWhatsApp)
	a := New()
	ctx := context.Background()
	var se *channel.SendError
	e.sim.FailNext(1, 500)
	if _, err := a.Send(ctx, c, channel.Outgoing{To: "1", Text: "x"}); !errors.As(err, &se) || !se.Retryable {
		t.Fatalf("500: %v", err)
	}
	e.sim.FailNext(1, 429)
	if _, err := a.Send(ctx, c, channel.Outgoing{To: "1", Text: "x"}); !errors.As(err, &se) || !se.Retryable || se.RetryAfter != 2*time.Second {
		t.Fatalf("429: %#v", err)
	}
	bad := c
	bad.AccountSecrets = map[string]string{"api_token": "nope"}
	if _, err := a.Send(ctx, bad, channel.Outgoing{To: "1", Text: "x"}); !errors.As(err, &se) || se.Retryable || se.HTTPStatus != 401 {
		t.Fatalf("401: %v", err)
	}
	p, _ := e.sim.Profile(profile)
	p.State = wappisim.StatePendingQR
	e.sim.AddProfile(p)
	if _, err := a.Send(ctx, c, channel.Outgoing{To: "1", Text: "x"}); !errors.As(err, &se) || se.Retryable || !strings.Contains(se.Reason, "not authorized") {
		t.Fatalf("unauthorized profile: %v", err)
	}
}

func TestFetchMedia(t *testing.T) {
	for _, net := range []string{NetWhatsApp, NetTelegram} {
		t.Run(net, func(t *testing.T) {
			e, c := newSim(t, net)
			e.sim.AddFile("IMG1", wappisim.File{Data: []byte("\x89PNG-bytes"), MimeType: "image/png"})
			body, mime, err := New().FetchMedia(context.Background(), c, "IMG1")
			if err != nil {
				t.Fatal(err)
			}
			defer body.Close()
			b, _ := io.ReadAll(body)
			if string(b) != "\x89PNG-bytes" || mime != "image/png" {
				t.Fatalf("%q %q", b, mime)
			}
			if _, _, err := New().FetchMedia(context.Background(), c, "missing"); err == nil {
				t.Fatal("missing media must fail")
			}
		})
	}
}

func TestAuthorizationFlow(t *testing.T) {
	e, c := newSim(t, NetWhatsApp)
	a := New()
	ctx := context.Background()
	p, _ := e.sim.Profile(profile)
	p.State = wappisim.StatePendingQR
	e.sim.AddProfile(p)

	var mu sync.Mutex
	var auth []channel.Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := channel.Request{Header: r.Header, Body: body}
		if a.Verify(c, req) != nil {
			w.WriteHeader(401)
			return
		}
		evs, _ := a.Parse(c, req)
		mu.Lock()
		auth = append(auth, evs...)
		mu.Unlock()
	}))
	defer hook.Close()
	if err := a.SetWebhook(ctx, c, hook.URL, hookSec); err != nil {
		t.Fatal(err)
	}
	if st, err := a.ProfileStatus(ctx, c); err != nil || st != "unauthorized" {
		t.Fatal(st, err)
	}
	img, st, err := a.AuthorizationQR(ctx, c)
	if err != nil || st != "pending" || !strings.HasPrefix(img, "data:image/png;base64,") {
		t.Fatal(img, st, err)
	}
	png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(img, "data:image/png;base64,"))
	if err != nil || !strings.HasPrefix(string(png), "\x89PNG") {
		t.Fatal("QR is not a PNG")
	}
	if err := e.sim.Authorize(ctx, profile); err == nil {
		t.Fatal("cannot authorize before scanning")
	}
	if err := e.sim.Scan(ctx, profile); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.Authorize(ctx, profile); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(auth) != 1 || auth[0].Type != channel.EventAuth || auth[0].AuthState != "authorized" {
		t.Fatalf("%+v", auth)
	}
	mu.Unlock()
	if st, err := a.ProfileStatus(ctx, c); err != nil || st != "authorized" {
		t.Fatal(st, err)
	}
	if _, st, err := a.AuthorizationQR(ctx, c); err != nil || st != "authorized" {
		t.Fatal(st, err)
	}

	// Telegram QR comes from /tapi/sync/auth/qr in detail.
	e2, c2 := newSim(t, NetTelegram)
	p2, _ := e2.sim.Profile(profile)
	p2.State = wappisim.StatePendingQR
	e2.sim.AddProfile(p2)
	img, st, err = a.AuthorizationQR(ctx, c2)
	if err != nil || st != "pending" || !strings.HasPrefix(img, "data:image/png;base64,") || len(e2.sim.Calls("/sync/auth/qr")) != 1 {
		t.Fatal(img, st, err)
	}
}

func TestValidateConfig(t *testing.T) {
	a := New()
	if err := a.ValidateConfig(map[string]any{"profile_id": profile, "network": "telegram"}, map[string]string{"webhook_auth": "x"}); err != nil {
		t.Fatal(err)
	}
	for i, c := range []map[string]any{{"network": "whatsapp"}, {"profile_id": profile, "network": "viber"}, {"profile_id": "a b"}} {
		if err := a.ValidateConfig(c, map[string]string{"webhook_auth": "x"}); !inbox.IsCode(err, inbox.Invalid) {
			t.Fatalf("case %d: %v", i, err)
		}
	}
	// webhook_auth is required (Verify refuses every webhook without it),
	// and must be sendable as a header value.
	for name, secrets := range map[string]map[string]string{
		"absent":         nil,
		"empty":          {"webhook_auth": ""},
		"blank":          {"webhook_auth": "   "},
		"two lines":      {"webhook_auth": "a\nb"},
		"outer spaces":   {"webhook_auth": " abc "},
		"too long":       {"webhook_auth": strings.Repeat("a", 513)},
		"only api_token": {"api_token": "x"},
	} {
		err := a.ValidateConfig(map[string]any{"profile_id": profile}, secrets)
		var ie *inbox.Error
		if !errors.As(err, &ie) || ie.Code != inbox.Invalid || ie.Fields["webhook_auth"] == "" {
			t.Errorf("%s: want an invalid webhook_auth, got %v", name, err)
		}
	}
}

func FuzzParseWappi(f *testing.F) {
	f.Add([]byte(`{"messages":[{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":"3EB0FFEE","type":"chat","body":"hi","from":"15550009999@c.us","chatId":"15550009999@c.us","senderName":"Tom","time":1700000000}]}`))
	f.Add([]byte(`{"messages":{"wh_type":"delivery_status","id":"A","chat_id":"1@c.us","status":"read"}}`))
	f.Add([]byte(`[{"type":"location","body":"1,2","from":"1"},{"type":"vcard","body":"FN:x"}]`))
	f.Add([]byte(`{"wh_type":"incoming_message","time":1e300,"isGroup":{"x":1},"id":[1]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, net := range []string{NetWhatsApp, NetTelegram, NetMax} {
			_, _ = New().Parse(cfgFor(net), channel.Request{Body: body})
		}
	})
}

func TestParseSystemTypes(t *testing.T) {
	evs := parseNet(t, NetWhatsApp, `{"messages":[{"wh_type":"incoming_message","id":"N1","type":"e2e_notification","body":"","from":"15550009999@c.us","time":1},
{"wh_type":"incoming_message","id":"N2","type":"gp2","body":"","from":"15551112222@c.us","chatId":"120363012345678901@g.us","time":2}]}`)
	if len(evs) != 1 || evs[0].Type != channel.EventGroupInfo || evs[0].ChatID != "120363012345678901@g.us" || evs[0].GroupTitle != "" {
		t.Fatalf("%+v", evs)
	}
}

// TestGroupInfo: group titles (not in webhooks) are found in the profile's
// chat list, page by page, under the chat ids Parse reports.
func TestGroupInfo(t *testing.T) {
	e, c := newSim(t, NetWhatsApp)
	for i := range 150 { // two pages
		e.sim.AddChat(profile, wappisim.Chat{ID: fmt.Sprintf("1555%07d@c.us", i), Name: fmt.Sprint("Person ", i)})
	}
	e.sim.AddChat(profile, wappisim.Chat{ID: "120363000000000001@g.us", Name: "Ops team", Group: true})
	// The chat id as a webhook carries it, parsed.
	evs, err := New().Parse(c, channel.Request{Body: []byte(`{"messages":[{"wh_type":"incoming_message","profile_id":"` + profile +
		`","id":"3EB0AA","type":"chat","body":"hi","from":"15550002222@c.us","chatId":"120363000000000001@g.us","senderName":"Tom","time":1700000000}]}`)})
	if err != nil || len(evs) != 1 || !evs[0].IsGroup || evs[0].GroupTitle != "" {
		t.Fatalf("parse: %v %+v", err, evs)
	}
	got, err := New().GroupInfo(context.Background(), c, []string{evs[0].ChatID, "120363999999999999@g.us"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Type != channel.EventGroupInfo || got[0].ChatID != evs[0].ChatID || got[0].GroupTitle != "Ops team" || !got[0].IsGroup {
		t.Fatalf("group info %+v", got)
	}
	calls := e.sim.Calls("/sync/chats/get")
	if len(calls) != 2 || url.Values(calls[1].Query).Get("offset") != "100" || calls[0].Prefix != "/api" {
		t.Fatalf("chat list calls %+v", calls)
	}
	// A refused token is an error.
	c.AccountSecrets = map[string]string{"api_token": "wrong"}
	if _, err := New().GroupInfo(context.Background(), c, []string{evs[0].ChatID}); err == nil {
		t.Fatal("wrong token accepted")
	}
}
