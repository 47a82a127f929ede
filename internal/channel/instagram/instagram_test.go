package instagram

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/providersim/metasim"
)

const (
	acct    = "17841405822304914"
	igsid   = "6984163751617405"
	longMid = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI3NjAxMjAxMzE5NjQxNTk3NzozMTkxNzAyNzQ1MjgyNjgwOTk0NDg5MDY3NTY5MjE5MDk3NgZDZD"
)

func body(items string) []byte {
	return []byte(`{"object":"instagram","entry":[{"time":1739321024123,"id":"` + acct + `","messaging":[` + items + `]}]}`)
}

func parse(t *testing.T, b []byte) []channel.Event {
	t.Helper()
	evs, err := New().Parse(channel.Config{Config: map[string]any{"account_id": acct}}, channel.Request{Body: b})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return evs
}

func TestParse(t *testing.T) {
	from := `{"sender":{"id":"` + igsid + `"},"recipient":{"id":"` + acct + `"},"timestamp":1739321024000,`
	tests := []struct {
		name  string
		item  string
		check func(t *testing.T, e channel.Event)
	}{
		{"text with long mid", from + `"message":{"mid":"` + longMid + `","text":"\u041f\u0440\u0438\u0432\u0435\u0442 \ud83d\ude0d"}}`, func(t *testing.T, e channel.Event) {
			if len(longMid) <= 150 || e.ExternalID != longMid || e.Text != "Привет 😍" || e.ChatID != igsid || e.Kind != inbox.KindText {
				t.Errorf("%+v", e)
			}
		}},
		{"seen", from + `"read":{"mid":"` + longMid + `"}}`, func(t *testing.T, e channel.Event) {
			if e.Type != channel.EventRead || e.TargetID != longMid || !e.Watermark.Equal(time.UnixMilli(1739321024000)) {
				t.Errorf("%+v", e)
			}
		}},
		{"echo", `{"sender":{"id":"` + acct + `"},"recipient":{"id":"` + igsid + `"},"timestamp":1739321024000,"message":{"mid":"aWdf_echo","text":"thanks!","is_echo":true}}`, func(t *testing.T, e channel.Event) {
			if e.Direction != "outbound" || e.ChatID != igsid || e.Recipient.Identifier != igsid {
				t.Errorf("%+v", e)
			}
		}},
		{"reaction love", from + `"reaction":{"mid":"aWdf_t","action":"react","reaction":"love","emoji":"\u2764\ufe0f"}}`, func(t *testing.T, e channel.Event) {
			if e.Type != channel.EventReaction || e.Emoji != "❤️" || e.TargetID != "aWdf_t" {
				t.Errorf("%+v", e)
			}
		}},
		{"unreact", from + `"reaction":{"mid":"aWdf_t","action":"unreact"}}`, func(t *testing.T, e channel.Event) {
			if e.Type != channel.EventReaction || e.Emoji != "" {
				t.Errorf("%+v", e)
			}
		}},
		{"share", from + `"message":{"mid":"aWdf_sh","attachments":[{"type":"share","payload":{"url":"https:\/\/lookaside.fbsbx.com\/ig_messaging_cdn\/?asset_id=18139494541428835&signature=x","ig_post_media_id":"18139494541428835","title":"Build a workspace"}}]}}`, func(t *testing.T, e channel.Event) {
			if e.Kind != inbox.KindText || !strings.Contains(e.Text, "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=18139494541428835") || !strings.Contains(e.Text, "Build a workspace") || !strings.Contains(string(e.Content), `"share"`) {
				t.Errorf("%+v", e)
			}
		}},
		{"story mention", from + `"message":{"mid":"aWdf_sm","attachments":[{"type":"story_mention","payload":{"url":"https:\/\/lookaside.fbsbx.com\/ig_messaging_cdn\/?asset_id=1"}}]}}`, func(t *testing.T, e channel.Event) {
			if !strings.Contains(e.Text, "Story mention") || !strings.Contains(e.Text, "asset_id=1") {
				t.Errorf("%+v", e)
			}
		}},
		{"reel", from + `"message":{"mid":"aWdf_r","attachments":[{"type":"ig_reel","payload":{"reel_video_id":"1","title":"cats","url":"https:\/\/x\/reel"}}]}}`, func(t *testing.T, e channel.Event) {
			if !strings.Contains(e.Text, "Reel") || !strings.Contains(e.Text, "https://x/reel") {
				t.Errorf("%+v", e)
			}
		}},
		{"image", from + `"message":{"mid":"aWdf_i","attachments":[{"type":"image","payload":{"url":"https:\/\/lookaside.fbsbx.com\/ig_messaging_cdn\/?asset_id=2"}}]}}`, func(t *testing.T, e channel.Event) {
			if e.Kind != inbox.KindImage || e.Attachments[0].ProviderRef != "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=2" {
				t.Errorf("%+v", e)
			}
		}},
		{"gif unsupported placeholder", from + `"message":{"mid":"aWdf_g","attachments":[{"type":"animated_image","payload":{"url":"https:\/\/x\/g.gif"}}]}}`, func(t *testing.T, e channel.Event) {
			if e.Kind != inbox.KindUnsupported || !strings.Contains(e.Text, "animated_image") || e.ExternalID != "aWdf_g" {
				t.Errorf("%+v", e)
			}
		}},
		{"is_unsupported", from + `"message":{"mid":"aWdf_u","is_unsupported":true}}`, func(t *testing.T, e channel.Event) {
			if e.Kind != inbox.KindUnsupported || e.Text == "" {
				t.Errorf("%+v", e)
			}
		}},
		{"deleted", from + `"message":{"mid":"aWdf_d","is_deleted":true}}`, func(t *testing.T, e channel.Event) {
			if e.Type != channel.EventDelete || e.TargetID != "aWdf_d" {
				t.Errorf("%+v", e)
			}
		}},
		{"story reply", from + `"message":{"mid":"aWdf_sr","text":"nice!","reply_to":{"story":{"url":"https:\/\/x\/story","id":"179"}}}}`, func(t *testing.T, e channel.Event) {
			if e.Kind != inbox.KindText || !strings.HasPrefix(e.Text, "nice!") || !strings.Contains(e.Text, "https://x/story") {
				t.Errorf("%+v", e)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := parse(t, body(tc.item))
			if len(evs) != 1 {
				t.Fatalf("%+v", evs)
			}
			tc.check(t, evs[0])
		})
	}
}

func TestParsePageEntryID(t *testing.T) {
	// Facebook-Login apps get entry.id = the Page id; events addressed to the account still count.
	b := []byte(`{"object":"instagram","entry":[{"time":1761287298065,"id":"PAGE_1","messaging":[{"sender":{"id":"` + igsid + `"},"recipient":{"id":"` + acct + `"},"timestamp":1761287294014,"message":{"mid":"aWdf_x","text":"hi"}}]}]}`)
	if evs := parse(t, b); len(evs) != 1 {
		t.Fatalf("%+v", evs)
	}
	other := []byte(`{"object":"instagram","entry":[{"time":1,"id":"OTHER","messaging":[{"sender":{"id":"1"},"recipient":{"id":"OTHER"},"timestamp":1,"message":{"mid":"m","text":"x"}}]}]}`)
	if evs := parse(t, other); len(evs) != 0 {
		t.Fatalf("foreign account: %+v", evs)
	}
}

func TestSend(t *testing.T) {
	ctx := context.Background()
	sim := metasim.New(metasim.Options{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	sim.AddInstagram(acct, "IGTOKEN")
	cfg := channel.Config{
		Config:     map[string]any{"account_id": acct, "api_base_url": srv.URL + "/v21.0"},
		Secrets:    map[string]string{"access_token": "IGTOKEN"},
		HTTPClient: srv.Client(),
	}
	text := strings.Repeat("я", 500) // 1000 bytes, 500 chars: allowed
	res, err := New().Send(ctx, cfg, channel.Outgoing{To: igsid, Text: text})
	if err != nil || len(res.ExternalID) <= 150 {
		t.Fatalf("%+v %v", res, err)
	}
	s := sim.Sends()[0]
	if s.Path != "/v21.0/"+acct+"/messages" || s.Header.Get("Authorization") != "Bearer IGTOKEN" || s.JSON()["message"].(map[string]any)["text"] != text {
		t.Fatalf("%s %v", s.Path, s.Header)
	}
	_, err = New().Send(ctx, cfg, channel.Outgoing{To: igsid, Text: text + "a"}) // 1001 bytes
	var se *channel.SendError
	if !errors.As(err, &se) || se.Retryable || len(sim.Sends()) != 1 {
		t.Fatalf("1001 bytes: %v", err)
	}
	sim.TouchInbound("old", time.Now().Add(-8*24*time.Hour))
	if _, err := New().Send(ctx, cfg, channel.Outgoing{To: "old", Text: "x", HumanAgent: true}); !errors.As(err, &se) || se.Code != "10/2018278" {
		t.Fatalf("past 7 days: %v", err)
	}
	r := New().Rules(cfg)
	if r.MaxTextLen != 1000 || r.TextLenUnit != "bytes" || r.TagWindow != 7*24*time.Hour || r.ReplyWindow != 24*time.Hour {
		t.Errorf("%+v", r)
	}
	if err := New().ValidateConfig(map[string]any{}, nil); !inbox.IsCode(err, inbox.Invalid) {
		t.Error(err)
	}
}

func FuzzParseInstagram(f *testing.F) {
	f.Add(body(`{"sender":{"id":"1"},"recipient":{"id":"` + acct + `"},"timestamp":1,"message":{"mid":"m","attachments":[{"type":"share","payload":"x"}],"reply_to":{"story":null}}}`))
	f.Add(body(`{"read":{"mid":5}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := New().Parse(channel.Config{Config: map[string]any{"account_id": acct}}, channel.Request{Body: b})
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

func TestParseUnmatchedIDSchemeKept(t *testing.T) {
	// Instagram-Login apps: entry.id and recipient.id may both differ from the
	// configured account id; the entry does not name another party, so keep it.
	b := []byte(`{"object":"instagram","entry":[{"time":1,"id":"IGUSER","messaging":[{"sender":{"id":"` + igsid + `"},"recipient":{"id":"IGAPPUSER"},"timestamp":1739321024000,"message":{"mid":"aWdf_k","text":"hi"}}]}]}`)
	if evs := parse(t, b); len(evs) != 1 {
		t.Fatalf("%+v", evs)
	}
}
