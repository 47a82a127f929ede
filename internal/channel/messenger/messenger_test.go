package messenger

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/providersim/metasim"
)

const page = "106540352242922"

func body(items string) []byte {
	return []byte(`{"object":"page","entry":[{"id":"` + page + `","time":1739321024123,"messaging":[` + items + `]}]}`)
}

func parse(t *testing.T, b []byte) []channel.Event {
	t.Helper()
	cfg := channel.Config{Config: map[string]any{"page_id": page}}
	evs, err := New().Parse(cfg, channel.Request{Body: b})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return evs
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		items string
		n     int
		check func(t *testing.T, evs []channel.Event)
	}{
		{"text with escapes", `{"sender":{"id":"7428349175012347"},"recipient":{"id":"` + page + `"},"timestamp":1739321024000,"message":{"mid":"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P","text":"Gr\u00fc\u00dfe \ud83d\udc4b https:\/\/a.b\/c"}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				e := evs[0]
				if e.Type != channel.EventMessage || e.Kind != inbox.KindText || e.Text != "Grüße 👋 https://a.b/c" || e.ChatID != "7428349175012347" || e.Direction != "inbound" || e.Sender.Name != "" {
					t.Errorf("%+v", e)
				}
				if e.ExternalID != "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P" || !e.Timestamp.Equal(time.UnixMilli(1739321024000)) {
					t.Errorf("%q %v", e.ExternalID, e.Timestamp)
				}
			}},
		{"attachments", `{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1739321024000,"message":{"mid":"m_att","attachments":[{"type":"image","payload":{"url":"https:\/\/scontent.xx.fbcdn.net\/v\/t1.15752-9\/photo.jpg?_nc_cat=1&oh=abc"}},{"type":"file","payload":{"url":"https:\/\/cdn.fbsbx.com\/v\/t59\/report.pdf?x=1"}}]}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				e := evs[0]
				if e.Kind != inbox.KindImage || len(e.Attachments) != 2 || e.Attachments[0].ProviderRef != "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo.jpg?_nc_cat=1&oh=abc" || e.Attachments[1].Kind != inbox.KindDocument || e.Attachments[1].Filename != "report.pdf" {
					t.Errorf("%+v", e)
				}
			}},
		{"sticker", `{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1739321024000,"message":{"mid":"m_st","attachments":[{"type":"image","payload":{"url":"https:\/\/x\/s.png","sticker_id":369239263222822}}],"sticker_id":369239263222822}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Kind != inbox.KindSticker {
					t.Errorf("%+v", evs[0])
				}
			}},
		{"quick reply and reply_to", `{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1739321024000,"message":{"mid":"m_qr","text":"Red","quick_reply":{"payload":"COLOR_RED"},"reply_to":{"mid":"m_prev"}}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				e := evs[0]
				if e.Kind != inbox.KindInteractive || e.Text != "Red" || e.ReplyToID != "m_prev" || !strings.Contains(string(e.Content), "COLOR_RED") {
					t.Errorf("%+v", e)
				}
			}},
		{"echo is outbound", `{"sender":{"id":"` + page + `"},"recipient":{"id":"U1"},"timestamp":1739321024000,"message":{"is_echo":true,"app_id":1517776481860111,"metadata":"x","mid":"m_echo","text":"we replied"}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				e := evs[0]
				if e.Direction != "outbound" || e.ChatID != "U1" || e.Recipient.Identifier != "U1" || e.Sender.Identifier != page || e.ExternalID != "m_echo" {
					t.Errorf("%+v", e)
				}
			}},
		{"reaction react with emoji", `{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1458668856463,"reaction":{"reaction":"love","emoji":"\u2764\ufe0f","action":"react","mid":"m_target"}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				e := evs[0]
				if e.Type != channel.EventReaction || e.Emoji != "❤️" || e.TargetID != "m_target" || e.ExternalID != "U1:m_target:react:1458668856463" {
					t.Errorf("%+v", e)
				}
			}},
		{"reaction name only", `{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1458668856463,"reaction":{"reaction":"wow","action":"react","mid":"m_target"}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Emoji != "😮" {
					t.Errorf("%+v", evs[0])
				}
			}},
		{"unreact", `{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1458668856999,"reaction":{"action":"unreact","mid":"m_target"}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				e := evs[0]
				if e.Type != channel.EventReaction || e.Emoji != "" || e.TargetID != "m_target" || e.ExternalID != "U1:m_target:unreact:1458668856999" {
					t.Errorf("%+v", e)
				}
			}},
		{"read watermark", `{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1458668856463,"read":{"watermark":1458668856253}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				e := evs[0]
				if e.Type != channel.EventRead || !e.Watermark.Equal(time.UnixMilli(1458668856253)) || e.ChatID != "U1" {
					t.Errorf("%+v", e)
				}
			}},
		{"delivery with mids", `{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1458668856463,"delivery":{"mids":["m_a","m_b"],"watermark":1458668856253}}`, 2,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Type != channel.EventStatus || evs[0].Status != inbox.MsgDelivered || evs[0].TargetID != "m_a" || evs[1].TargetID != "m_b" || evs[0].ExternalID == evs[1].ExternalID {
					t.Errorf("%+v", evs)
				}
			}},
		{"delivery watermark only", `{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1458668856463,"delivery":{"watermark":1458668856253}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				e := evs[0]
				if e.Type != channel.EventStatus || e.TargetID != "" || !e.Watermark.Equal(time.UnixMilli(1458668856253)) {
					t.Errorf("%+v", e)
				}
			}},
		{"postback", `{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1527459824,"postback":{"mid":"m_pb","title":"Get Started","payload":"GET_STARTED"}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				e := evs[0]
				if e.Kind != inbox.KindInteractive || e.Text != "Get Started" || e.ExternalID != "m_pb" || !strings.Contains(string(e.Content), "GET_STARTED") {
					t.Errorf("%+v", e)
				}
			}},
		{"message edit", `{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1739321024000,"message_edit":{"mid":"m_orig","text":"fixed typo","num_edit":2}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				e := evs[0]
				if e.Type != channel.EventEdit || e.TargetID != "m_orig" || e.Text != "fixed typo" || e.ExternalID != "m_orig:edit:2" {
					t.Errorf("%+v", e)
				}
			}},
		{"unknown event kept", `{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1739321024000,"optin":{"ref":"x"}}`, 1,
			func(t *testing.T, evs []channel.Event) {
				e := evs[0]
				if e.Kind != inbox.KindUnsupported || !strings.Contains(e.Text, "optin") || len(e.Raw) == 0 {
					t.Errorf("%+v", e)
				}
			}},
		{"broken item kept", `42`, 1,
			func(t *testing.T, evs []channel.Event) {
				if evs[0].Kind != inbox.KindUnsupported {
					t.Errorf("%+v", evs[0])
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := parse(t, body(tc.items))
			if len(evs) != tc.n {
				t.Fatalf("got %d events: %+v", len(evs), evs)
			}
			tc.check(t, evs)
		})
	}
}

func TestParseStandbyBatchAndRouting(t *testing.T) {
	b := []byte(`{"object":"page","entry":[` +
		`{"id":"` + page + `","time":1,"messaging":[{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1739321024000,"message":{"mid":"m_1","text":"a"}}]},` +
		`{"id":"` + page + `","time":2,"standby":[{"sender":{"id":"U2"},"recipient":{"id":"` + page + `"},"timestamp":1739321025000,"message":{"mid":"m_2","text":"b"}}]},` +
		`{"id":"OTHER_PAGE","time":3,"messaging":[{"sender":{"id":"U3"},"recipient":{"id":"OTHER_PAGE"},"timestamp":1739321026000,"message":{"mid":"m_3","text":"c"}}]}]}`)
	evs := parse(t, b)
	if len(evs) != 2 || evs[0].ExternalID != "m_1" || evs[1].ExternalID != "m_2" {
		t.Fatalf("%+v", evs)
	}
	if _, err := New().Parse(channel.Config{}, channel.Request{Body: []byte(`{"object":"instagram","entry":[]}`)}); err == nil {
		t.Error("instagram object on a messenger channel must be refused")
	}
	if _, err := New().Parse(channel.Config{}, channel.Request{Body: []byte(`nope`)}); err == nil {
		t.Error("garbage must be an error")
	}
}

func simSetup(t *testing.T) (*metasim.Server, channel.Config) {
	t.Helper()
	sim := metasim.New(metasim.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.AddPage(page, "PAGE_TOKEN")
	return sim, channel.Config{
		Config:     map[string]any{"page_id": page, "api_base_url": srv.URL + "/v21.0"},
		Secrets:    map[string]string{"page_access_token": "PAGE_TOKEN", "app_secret": "s", "verify_token": "v"},
		HTTPClient: srv.Client(),
	}
}

func TestSend(t *testing.T) {
	ctx := context.Background()
	sim, cfg := simSetup(t)
	res, err := New().Send(ctx, cfg, channel.Outgoing{To: "U1", Text: "hello", ReplyToID: "m_q"})
	if err != nil || !strings.HasPrefix(res.ExternalID, "m_") {
		t.Fatalf("%+v %v", res, err)
	}
	s := sim.Sends()[0]
	j := s.JSON()
	if s.Path != "/v21.0/me/messages" || s.Header.Get("Authorization") != "Bearer PAGE_TOKEN" || j["messaging_type"] != "RESPONSE" ||
		j["recipient"].(map[string]any)["id"] != "U1" || j["message"].(map[string]any)["text"] != "hello" ||
		j["message"].(map[string]any)["reply_to"].(map[string]any)["mid"] != "m_q" {
		t.Fatalf("%s %v", s.Path, j)
	}

	// outside 24 h: refused by the API unless HUMAN_AGENT (within 7 days)
	sim.TouchInbound("U2", time.Now().Add(-48*time.Hour))
	_, err = New().Send(ctx, cfg, channel.Outgoing{To: "U2", Text: "late"})
	var se *channel.SendError
	if !errors.As(err, &se) || se.Retryable || se.Code != "10/2018278" {
		t.Fatalf("err %#v", err)
	}
	sim.Reset()
	if _, err := New().Send(ctx, cfg, channel.Outgoing{To: "U2", Text: "agent here", HumanAgent: true}); err != nil {
		t.Fatal(err)
	}
	j = sim.Sends()[0].JSON()
	if j["messaging_type"] != "MESSAGE_TAG" || j["tag"] != "HUMAN_AGENT" {
		t.Errorf("%v", j)
	}

	// attachments by URL, then the text
	sim.Reset()
	res, err = New().Send(ctx, cfg, channel.Outgoing{To: "U1", Text: "see", Attachments: []channel.OutMedia{{Kind: "image", URL: "https://p/share/1"}, {Kind: "document", URL: "https://p/share/2"}}})
	if err != nil || len(res.ExternalIDs) != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	sends := sim.Sends()
	att := sends[0].JSON()["message"].(map[string]any)["attachment"].(map[string]any)
	if att["type"] != "image" || att["payload"].(map[string]any)["url"] != "https://p/share/1" ||
		sends[1].JSON()["message"].(map[string]any)["attachment"].(map[string]any)["type"] != "file" ||
		sends[2].JSON()["message"].(map[string]any)["text"] != "see" {
		t.Errorf("%v", att)
	}

	// reactions: providers.md documents none that a page can send, so the
	// adapter refuses them for good and sends nothing
	sim.Reset()
	for _, emoji := range []string{"❤️", ""} {
		_, err := New().Send(ctx, cfg, channel.Outgoing{To: "U1", Reaction: &channel.OutReaction{TargetID: "m_t", Emoji: emoji}})
		var se *channel.SendError
		if !errors.As(err, &se) || se.Code != "unsupported" || se.Retryable {
			t.Fatalf("reaction %q: %v", emoji, err)
		}
	}
	if r := sim.Sends(); len(r) != 0 {
		t.Errorf("reactions reached the provider: %v", r)
	}

	// faults
	sim.FailNext(1)
	if _, err := New().Send(ctx, cfg, channel.Outgoing{To: "U1", Text: "x"}); !channel.IsRetryable(err) {
		t.Errorf("500 must be retryable: %v", err)
	}
	cfg.Secrets["page_access_token"] = "bad"
	if _, err := New().Send(ctx, cfg, channel.Outgoing{To: "U1", Text: "x"}); channel.IsRetryable(err) || !errors.As(err, &se) || se.Code != "190" {
		t.Errorf("bad token: %v", err)
	}
}

func TestProfileFetchMediaRules(t *testing.T) {
	ctx := context.Background()
	sim, cfg := simSetup(t)
	sim.SetProfile("U1", map[string]any{"first_name": "Ana", "last_name": "Lima", "profile_pic": "https://p/pic.jpg"})
	p, err := New().Profile(ctx, cfg, "U1")
	if err != nil || p.Name != "Ana Lima" || p.AvatarURL != "https://p/pic.jpg" || p.Identifier != "U1" {
		t.Fatalf("%+v %v", p, err)
	}
	if q := sim.Requests()[0].Query["fields"]; len(q) != 1 || q[0] != "first_name,last_name,profile_pic" {
		t.Errorf("fields %v", q)
	}
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("token leaked to the CDN")
		}
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = w.Write([]byte("JPEG"))
	}))
	defer cdn.Close()
	rc, mime, err := New().FetchMedia(ctx, channel.Config{HTTPClient: cdn.Client(), Secrets: cfg.Secrets}, cdn.URL+"/v/photo.jpg?oh=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "JPEG" || mime != "image/jpeg" {
		t.Errorf("%q %q", b, mime)
	}
	if _, _, err := New().FetchMedia(ctx, cfg, "file:///etc/passwd"); err == nil {
		t.Error("non-http refs must be refused")
	}
	r := New().Rules(cfg)
	if r.MaxTextLen != 2000 || r.TextLenUnit != "chars" || r.ReplyWindow != 24*time.Hour || r.TagWindow != 7*24*time.Hour || r.Templates {
		t.Errorf("%+v", r)
	}
	if err := New().ValidateConfig(map[string]any{"page_id": "1"}, map[string]string{"page_access_token": "t", "app_secret": "a"}); !inbox.IsCode(err, inbox.Invalid) {
		t.Errorf("missing verify_token: %v", err)
	}
}

func FuzzParseMessenger(f *testing.F) {
	f.Add(body(`{"sender":{"id":"U1"},"recipient":{"id":"P"},"timestamp":1,"message":{"mid":"m","text":"x","attachments":[{"type":"image","payload":null}]}}`))
	f.Add(body(`{"sender":{"id":"U1"},"reaction":{"action":"react"},"read":{"watermark":"x"}}`))
	f.Add(body(`{"delivery":{"mids":null},"postback":{},"message_edit":{"num_edit":"2"}}`))
	f.Add([]byte(`{"object":"page","entry":[{"id":5,"messaging":[null,[],"x"]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := New().Parse(channel.Config{Config: map[string]any{"page_id": page}}, channel.Request{Body: b})
		if err != nil {
			return
		}
		for _, e := range evs {
			if e.Type == "" {
				t.Fatalf("event without type: %+v", e)
			}
		}
	})
}
