package whatsapp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/meta"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/providersim/metasim"
)

func simSetup(t *testing.T, opts metasim.Options) (*metasim.Server, channel.Config) {
	t.Helper()
	sim := metasim.New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.AddWhatsApp(pnid, "EAAtoken")
	cfg := channel.Config{
		Kind:       Kind,
		Config:     map[string]any{"phone_number_id": pnid, "api_base_url": srv.URL + "/v21.0"},
		Secrets:    map[string]string{"access_token": "EAAtoken", "app_secret": "s3cret", "verify_token": "vt"},
		HTTPClient: srv.Client(),
	}
	return sim, cfg
}

func TestSendShapes(t *testing.T) {
	tests := []struct {
		name  string
		out   channel.Outgoing
		check func(t *testing.T, bodies []map[string]any)
	}{
		{"text reply", channel.Outgoing{To: "16505551234", Text: "Olá 😀", ReplyToID: "wamid.Q"}, func(t *testing.T, b []map[string]any) {
			if len(b) != 1 || b[0]["type"] != "text" || b[0]["to"] != "16505551234" || b[0]["messaging_product"] != "whatsapp" {
				t.Fatalf("%v", b)
			}
			if b[0]["text"].(map[string]any)["body"] != "Olá 😀" || b[0]["context"].(map[string]any)["message_id"] != "wamid.Q" {
				t.Errorf("%v", b[0])
			}
		}},
		{"reaction", channel.Outgoing{To: "16505551234", Reaction: &channel.OutReaction{TargetID: "wamid.T", Emoji: "👍"}}, func(t *testing.T, b []map[string]any) {
			r := b[0]["reaction"].(map[string]any)
			if b[0]["type"] != "reaction" || r["message_id"] != "wamid.T" || r["emoji"] != "👍" {
				t.Errorf("%v", b[0])
			}
		}},
		{"reaction removal", channel.Outgoing{To: "16505551234", Reaction: &channel.OutReaction{TargetID: "wamid.T"}}, func(t *testing.T, b []map[string]any) {
			r := b[0]["reaction"].(map[string]any)
			if e, ok := r["emoji"]; !ok || e != "" {
				t.Errorf("removal must send emoji \"\": %v", r)
			}
		}},
		{"image with caption", channel.Outgoing{To: "16505551234", Text: "look", Attachments: []channel.OutMedia{{Kind: "image", MimeType: "image/png", URL: "https://parley.example/share/abc"}}}, func(t *testing.T, b []map[string]any) {
			if len(b) != 1 || b[0]["type"] != "image" {
				t.Fatalf("%v", b)
			}
			img := b[0]["image"].(map[string]any)
			if img["link"] != "https://parley.example/share/abc" || img["caption"] != "look" {
				t.Errorf("%v", img)
			}
		}},
		{"document and voice with text", channel.Outgoing{To: "+16505551234", Text: "files", Attachments: []channel.OutMedia{
			{Kind: "document", MimeType: "application/pdf", Filename: "a.pdf", URL: "https://x/a"},
			{Kind: "voice", MimeType: "audio/ogg; codecs=opus", URL: "https://x/v"},
		}}, func(t *testing.T, b []map[string]any) {
			if len(b) != 3 || b[0]["type"] != "text" || b[1]["type"] != "document" || b[2]["type"] != "audio" {
				t.Fatalf("%v", b)
			}
			if b[0]["to"] != "16505551234" || b[1]["document"].(map[string]any)["filename"] != "a.pdf" {
				t.Errorf("%v", b)
			}
		}},
		{"template", channel.Outgoing{To: "16505551234", Template: &channel.Template{Name: "order_update", Language: "pt_BR", Params: []string{"Ana", "#42"}}}, func(t *testing.T, b []map[string]any) {
			tpl := b[0]["template"].(map[string]any)
			if b[0]["type"] != "template" || tpl["name"] != "order_update" || tpl["language"].(map[string]any)["code"] != "pt_BR" {
				t.Fatalf("%v", tpl)
			}
			comps := tpl["components"].([]any)
			params := comps[0].(map[string]any)["parameters"].([]any)
			if comps[0].(map[string]any)["type"] != "body" || len(params) != 2 || params[1].(map[string]any)["text"] != "#42" {
				t.Errorf("%v", comps)
			}
		}},
		{"username user", channel.Outgoing{To: "US.13491208655302741918", Text: "hi"}, func(t *testing.T, b []map[string]any) {
			if _, hasTo := b[0]["to"]; hasTo || b[0]["recipient"] != "US.13491208655302741918" {
				t.Errorf("%v", b[0])
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim, cfg := simSetup(t, metasim.Options{})
			res, err := New().Send(context.Background(), cfg, tc.out)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			sends := sim.Sends()
			if len(sends) == 0 || !strings.HasPrefix(res.ExternalID, "wamid.") || len(res.ExternalIDs) != len(sends) || res.Status != inbox.MsgSent {
				t.Fatalf("result %+v, %d sends", res, len(sends))
			}
			var bodies []map[string]any
			for _, s := range sends {
				if s.Path != "/v21.0/"+pnid+"/messages" || s.Header.Get("Authorization") != "Bearer EAAtoken" || !strings.HasPrefix(s.Header.Get("Content-Type"), "application/json") {
					t.Errorf("request %s %v", s.Path, s.Header)
				}
				bodies = append(bodies, s.JSON())
			}
			tc.check(t, bodies)
		})
	}
}

func TestSendErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("outside window 131047 not retryable", func(t *testing.T) {
		sim, cfg := simSetup(t, metasim.Options{})
		sim.TouchInbound("16505551234", time.Now().Add(-25*time.Hour))
		_, err := New().Send(ctx, cfg, channel.Outgoing{To: "16505551234", Text: "late"})
		var se *channel.SendError
		if !errors.As(err, &se) || se.Retryable || se.Code != "131047/2494078" || !strings.Contains(se.Reason, "Re-engagement") || se.HTTPStatus != 400 {
			t.Fatalf("err = %#v", err)
		}
		// a template is allowed outside the window
		if _, err := New().Send(ctx, cfg, channel.Outgoing{To: "16505551234", Template: &channel.Template{Name: "hello_world", Language: "en_US"}}); err != nil {
			t.Errorf("template: %v", err)
		}
	})
	t.Run("invalid token 190", func(t *testing.T) {
		_, cfg := simSetup(t, metasim.Options{})
		cfg.Secrets["access_token"] = "wrong"
		_, err := New().Send(ctx, cfg, channel.Outgoing{To: "1", Text: "x"})
		var se *channel.SendError
		if !errors.As(err, &se) || se.Retryable || se.Code != "190" || se.HTTPStatus != 401 {
			t.Fatalf("err = %#v", err)
		}
	})
	t.Run("500 is retryable then succeeds", func(t *testing.T) {
		sim, cfg := simSetup(t, metasim.Options{})
		sim.FailNext(1)
		_, err := New().Send(ctx, cfg, channel.Outgoing{To: "1", Text: "x"})
		if !channel.IsRetryable(err) {
			t.Fatalf("err = %v", err)
		}
		if _, err := New().Send(ctx, cfg, channel.Outgoing{To: "1", Text: "x"}); err != nil {
			t.Fatalf("after fault: %v", err)
		}
	})
	t.Run("throttling code retryable", func(t *testing.T) {
		sim, cfg := simSetup(t, metasim.Options{})
		sim.FailNextWith(1, 400, 130429, "(#130429) Rate limit hit")
		_, err := New().Send(ctx, cfg, channel.Outgoing{To: "1", Text: "x"})
		if !channel.IsRetryable(err) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("too long refused locally", func(t *testing.T) {
		sim, cfg := simSetup(t, metasim.Options{})
		_, err := New().Send(ctx, cfg, channel.Outgoing{To: "1", Text: strings.Repeat("ж", 4097)})
		if err == nil || channel.IsRetryable(err) || len(sim.Sends()) != 0 {
			t.Fatalf("err = %v, sends %d", err, len(sim.Sends()))
		}
	})
	t.Run("network failure is retryable", func(t *testing.T) {
		_, cfg := simSetup(t, metasim.Options{})
		cfg.Config["api_base_url"] = "http://127.0.0.1:1/v21.0"
		_, err := New().Send(ctx, cfg, channel.Outgoing{To: "1", Text: "x"})
		if err == nil || !channel.IsRetryable(err) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestFetchMedia(t *testing.T) {
	sim, cfg := simSetup(t, metasim.Options{})
	id := sim.AddMedia([]byte("\x89PNG fake"), "image/png")
	rc, mime, err := New().FetchMedia(context.Background(), cfg, id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "\x89PNG fake" || mime != "image/png" {
		t.Errorf("got %q %q", b, mime)
	}
	reqs := sim.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/v21.0/"+id || !strings.HasPrefix(reqs[1].Path, "/whatsapp_business/attachments") {
		t.Fatalf("requests: %+v", reqs)
	}
	for _, r := range reqs {
		if r.Header.Get("Authorization") != "Bearer EAAtoken" {
			t.Errorf("%s without bearer", r.Path)
		}
	}
	if _, _, err := New().FetchMedia(context.Background(), cfg, "nope"); err == nil {
		t.Error("unknown media id must fail")
	}
}

func TestAdapterVerifyHandshakeRulesConfig(t *testing.T) {
	a := New()
	cfg := channel.Config{Secrets: map[string]string{"app_secret": "s3cret", "verify_token": "vt"}}
	body := wrap(`"messages":[]`)
	req := channel.Request{Method: http.MethodPost, Header: http.Header{}, Body: body}
	req.Header.Set("X-Hub-Signature-256", meta.Sign("s3cret", body))
	if err := a.Verify(cfg, req); err != nil {
		t.Errorf("valid: %v", err)
	}
	req.Body = append([]byte(nil), body...)
	req.Body[10] ^= 1
	if err := a.Verify(cfg, req); !inbox.IsCode(err, inbox.Unauthorized) {
		t.Errorf("tampered: %v", err)
	}
	st, b, ok := a.Handshake(cfg, channel.Request{Query: map[string][]string{"hub.mode": {"subscribe"}, "hub.challenge": {"1158201444"}, "hub.verify_token": {"vt"}}})
	if st != 200 || b != "1158201444" || !ok {
		t.Errorf("handshake %d %q", st, b)
	}
	r := a.Rules(cfg)
	if r.MaxTextLen != 4096 || r.ReplyWindow != 24*time.Hour || !r.Templates || !r.Media || r.VoiceMime != "audio/ogg; codecs=opus" {
		t.Errorf("rules %+v", r)
	}
	if err := a.ValidateConfig(map[string]any{}, map[string]string{}); !inbox.IsCode(err, inbox.Invalid) {
		t.Errorf("empty config: %v", err)
	} else if fe := err.(*inbox.Error).Fields; fe["config.phone_number_id"] == "" || fe["secrets.access_token"] == "" || fe["secrets.app_secret"] == "" || fe["secrets.verify_token"] == "" {
		t.Errorf("fields %v", fe)
	}
	if err := a.ValidateConfig(map[string]any{"phone_number_id": "1"}, map[string]string{"access_token": "a", "app_secret": "b", "verify_token": "c"}); err != nil {
		t.Errorf("valid config: %v", err)
	}
	if a.Kind() != "whatsapp" {
		t.Error(a.Kind())
	}
}

func TestEndToEndDeliverParse(t *testing.T) {
	// A builder payload, delivered signed through metasim.Deliver, verifies and parses.
	a := New()
	cfg := channel.Config{Config: map[string]any{"phone_number_id": pnid}, Secrets: map[string]string{"app_secret": "s3cret"}}
	var (
		mu    sync.Mutex
		got   []channel.Event
		calls int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 { // first attempt fails: the deliverer retries
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req := channel.Request{Method: r.Method, Header: r.Header, Body: body}
		if err := a.Verify(cfg, req); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		evs, err := a.Parse(cfg, req)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got = evs
	}))
	defer srv.Close()
	body := metasim.WhatsAppPayload(metasim.WAEntry{WABAID: "1", Values: []metasim.WAValue{{
		PhoneNumberID: pnid, DisplayPhone: "15550783881",
		Contacts: []metasim.WAContact{{WaID: "16505551234", Name: "Zoë"}},
		Messages: []metasim.M{
			metasim.WAText("16505551234", "wamid.E1", 1739321024, "Привет 👋 https://a/b"),
			metasim.WAVoice("16505551234", "wamid.E2", 1739321025, "555"),
			metasim.WAReaction("16505551234", "wamid.E3", 1739321026, "wamid.E1", ""),
		},
		Statuses: []metasim.M{metasim.WAStatus("wamid.OUT", "failed", "16505551234", 1739321027, 131047, "Re-engagement message", "more than 24 hours")},
	}}})
	if strings.Contains(string(body), "👋") || !strings.Contains(string(body), `\ud83d\udc4b`) || !strings.Contains(string(body), `https:\/\/a\/b`) {
		t.Fatalf("payload not escaped like Meta: %s", body)
	}
	d := metasim.Deliverer{Client: srv.Client(), MaxAttempts: 3, Backoff: time.Millisecond}
	n, err := d.Deliver(context.Background(), srv.URL, "s3cret", body)
	if err != nil || n != 2 {
		t.Fatalf("deliver: %d %v", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 4 || got[0].Text != "Привет 👋 https://a/b" || got[0].Sender.Name != "Zoë" || got[1].Kind != inbox.KindVoice ||
		got[2].Type != channel.EventReaction || got[2].Emoji != "" || got[3].Status != inbox.MsgFailed {
		t.Fatalf("events %+v", got)
	}
}
