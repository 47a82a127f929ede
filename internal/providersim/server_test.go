package providersim

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/wappi"
	"github.com/parleyhq/parley/internal/inbox"
)

// TestSendThenStatusWebhooks sends through every real adapter pointed at
// the simulator's BaseURL and checks the status webhooks that come back are
// signed so the adapter's Verify accepts them and parse into the right
// statuses of the sent message.
func TestSendThenStatusWebhooks(t *testing.T) {
	srv, fp, _ := newSim(t)
	ctx := context.Background()
	type want = wantEv
	tests := []sendCase{
		{"ch-wa", channel.Outgoing{MessageID: "m1", To: "15552223333", Text: "Hello Ana 👋"},
			[]want{{channel.EventStatus, inbox.MsgSent}, {channel.EventStatus, inbox.MsgDelivered}, {channel.EventStatus, inbox.MsgRead}}},
		{"ch-fb", channel.Outgoing{MessageID: "m2", To: "2400000000000001", Text: "Hi from the page"},
			[]want{{channel.EventStatus, inbox.MsgDelivered}, {channel.EventRead, ""}}},
		{"ch-ig", channel.Outgoing{MessageID: "m3", To: "1700000000000002", Text: "Hi from IG"},
			[]want{{channel.EventRead, ""}}},
		{"ch-tw", channel.Outgoing{MessageID: "m4", To: "+15552223333", Text: "Your code is 1234"},
			[]want{{channel.EventStatus, inbox.MsgSent}, {channel.EventStatus, inbox.MsgDelivered}}},
		{"ch-wwa", channel.Outgoing{MessageID: "m5", To: "79161234567", Text: "Здравствуйте!"},
			[]want{{channel.EventStatus, inbox.MsgDelivered}, {channel.EventStatus, inbox.MsgRead}}},
		{"ch-wwa", channel.Outgoing{MessageID: "m6", To: "79161234567", Text: "reply", ReplyToID: "0a1b2c3d-4e5f:3EB0C0FFEE"},
			[]want{{channel.EventStatus, inbox.MsgDelivered}, {channel.EventStatus, inbox.MsgRead}}},
		{"ch-wtg", channel.Outgoing{MessageID: "m7", To: "500600700", Text: "Привет"},
			[]want{{channel.EventStatus, inbox.MsgDelivered}, {channel.EventStatus, inbox.MsgRead}}},
		{"ch-wmx", channel.Outgoing{MessageID: "m8", To: "600700800", Text: "MAX hello"},
			[]want{{channel.EventStatus, inbox.MsgDelivered}, {channel.EventStatus, inbox.MsgRead}}},
		{"ch-tg", channel.Outgoing{MessageID: "m9", To: "4242", Text: "Telegram has no statuses"}, nil},
	}
	reg := adapters()
	results := map[int]channel.SendResult{}
	for i, tc := range tests {
		ch, _ := srv.Channel(tc.ch)
		a, _ := reg.Get(ch.Kind)
		res, err := a.Send(ctx, cfgOf(srv, ch), tc.out)
		if err != nil {
			t.Fatalf("%s: send through %s: %v", tc.ch, srv.BaseURL(ch.Kind), err)
		}
		if res.ExternalID == "" {
			t.Fatalf("%s: no external id", tc.ch)
		}
		results[i] = res
	}
	need := map[string]map[channel.EventType]int{}
	for _, tc := range tests {
		for _, w := range tc.wants {
			if need[tc.ch] == nil {
				need[tc.ch] = map[channel.EventType]int{}
			}
			need[tc.ch][w.typ]++
		}
	}
	for i, tc := range tests {
		res := results[i]
		for _, w := range tc.wants {
			found := false
			for _, e := range fp.waitEvents(tc.ch, w.typ, need[tc.ch][w.typ]) {
				// Messenger read receipts name no message: a watermark covers it
				byWatermark := w.typ == channel.EventRead && e.TargetID == "" && !e.Watermark.IsZero()
				found = found || ((e.TargetID == res.ExternalID || byWatermark) && e.Status == w.status)
			}
			if !found {
				t.Errorf("%s: no %s %q webhook for %s", tc.ch, w.typ, w.status, res.ExternalID)
			}
		}
	}
	if err := srv.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	fp.mu.Lock()
	if n := len(fp.events["ch-tg"]); n != 0 {
		t.Errorf("telegram must not get status webhooks, got %d events", n)
	}
	if len(fp.denied) != 0 {
		t.Errorf("webhooks refused by Verify: %v", fp.denied)
	}
	fp.mu.Unlock()
	if got := srv.Telegram("7000000001:AAHsimTokenForTests_abc").Calls("sendMessage"); len(got) != 1 {
		t.Errorf("telegram fake saw %d sendMessage calls, want 1", len(got))
	}
	st := srv.Stats()
	if st["ch-wa"].Sends != 1 || st["ch-wa"].Statuses != 3 || st["ch-wwa"].Sends != 2 {
		t.Errorf("stats: wa %+v, wappi %+v", st["ch-wa"], st["ch-wwa"])
	}
}

type wantEv struct {
	typ    channel.EventType
	status string
}

type sendCase struct {
	ch    string
	out   channel.Outgoing
	wants []wantEv
}

// TestInboundMediaIsFetchable plays the stream into the fake Parley and
// downloads every attachment through the real adapters' FetchMedia, which
// exercises each prefix's media route (Graph media id + CDN, Bot API
// getFile + file download, Twilio media behind Basic auth, Wappi
// media/download and file links, public /media).
func TestInboundMediaIsFetchable(t *testing.T) {
	srv, fp, _ := newSim(t)
	ctx := context.Background()
	st := srv.NewStream(5, nil)
	reg := adapters()
	fetched := map[string]bool{}
	for n := 0; n < 3000 && len(fetched) < 9; n++ {
		d, _ := st.Next()
		if d.MediaKind == "" || fetched[d.ChannelID] {
			continue
		}
		if err := srv.Deliver(ctx, d.ChannelID, d.Body); err != nil {
			t.Fatalf("%s: deliver: %v", d.ChannelID, err)
		}
		fp.mu.Lock()
		evs := fp.events[d.ChannelID]
		e := evs[len(evs)-1]
		fp.mu.Unlock()
		if len(e.Attachments) != 1 {
			t.Fatalf("%s: parsed %d attachments", d.ChannelID, len(e.Attachments))
		}
		ch, _ := srv.Channel(d.ChannelID)
		a, _ := reg.Get(ch.Kind)
		body, mime, err := a.FetchMedia(ctx, cfgOf(srv, ch), e.Attachments[0].ProviderRef)
		if err != nil {
			t.Fatalf("%s %s: FetchMedia(%s): %v", d.ChannelID, d.Action, e.Attachments[0].ProviderRef, err)
		}
		data, _ := io.ReadAll(body)
		body.Close()
		if len(data) == 0 || mime == "" {
			t.Fatalf("%s: fetched %d bytes of %q", d.ChannelID, len(data), mime)
		}
		if d.MediaKind == inbox.KindImage && !strings.HasPrefix(string(data), "\x89PNG") {
			t.Errorf("%s: image bytes are not the PNG the stream made", d.ChannelID)
		}
		fetched[d.ChannelID] = true
	}
	if len(fetched) != 9 {
		t.Errorf("fetched media on %d channels, want 9: %v", len(fetched), fetched)
	}
	if s := srv.Stats(); s["ch-wa"].Inbound == 0 || s["ch-wa"].InboundFailed != 0 {
		t.Errorf("stats %+v", s["ch-wa"])
	}
}

// TestSignatureMismatchIsRetriedAndCounted: Parley knows another app secret,
// so its Verify refuses every attempt; the simulator retries like Meta and
// counts the failure.
func TestSignatureMismatchIsRetriedAndCounted(t *testing.T) {
	srv, fp, _ := newSim(t)
	ctx := context.Background()
	fp.mu.Lock()
	fp.override["ch-fb"] = map[string]string{"page_access_token": "EAAGpage-token", "app_secret": "rotated-secret", "verify_token": "vt"}
	fp.mu.Unlock()
	st := srv.NewStream(1, nil)
	var fb, wa []byte
	for fb == nil || wa == nil {
		d, _ := st.Next()
		switch {
		case d.ChannelID == "ch-fb" && fb == nil:
			fb = d.Body
		case d.ChannelID == "ch-wa" && wa == nil:
			wa = d.Body
		}
	}
	if err := srv.Deliver(ctx, "ch-fb", fb); err == nil {
		t.Fatal("delivery signed with the wrong secret must fail")
	}
	if err := srv.Deliver(ctx, "ch-wa", wa); err != nil {
		t.Fatalf("well-signed delivery: %v", err)
	}
	s := srv.Stats()
	if s["ch-fb"].InboundFailed != 1 || s["ch-fb"].Retries != 2 || s["ch-fb"].Inbound != 0 {
		t.Errorf("messenger stats %+v, want 1 failed after 3 attempts", s["ch-fb"])
	}
	if s["ch-wa"].Inbound != 1 || s["ch-wa"].Retries != 0 {
		t.Errorf("whatsapp stats %+v", s["ch-wa"])
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.denied["ch-fb"] != 3 {
		t.Errorf("Parley refused %d attempts, want 3", fp.denied["ch-fb"])
	}
}

func TestRouting(t *testing.T) {
	srv, _, ts := newSim(t)
	tests := []struct {
		method, path string
		header       map[string]string
		want         int
		contains     string
	}{
		{"GET", "/nope", nil, 404, ""},
		{"GET", "/healthz", nil, 200, "providersim"},
		{"POST", "/telegram/bot7000000001:AAHsimTokenForTests_abc/getMe", nil, 200, `"is_bot":true`},
		{"POST", "/telegram/bot1:wrong/getMe", nil, 401, "Unauthorized"},
		{"GET", "/wappi/api/sync/get/status?profile_id=0a1b2c3d-4e5f", map[string]string{"Authorization": "0123456789abcdef0123456789abcdef01234567"}, 200, `"authorized":true`},
		{"GET", "/wappi/api/sync/get/status?profile_id=0a1b2c3d-4e5f", map[string]string{"Authorization": "bad"}, 401, "Invalid token"},
		{"GET", "/wappi/tapi/sync/get/status?profile_id=0a1b2c3d-4e5f", map[string]string{"Authorization": "0123456789abcdef0123456789abcdef01234567"}, 400, "not a tapi profile"},
		{"POST", "/twilio/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json", nil, 404, "20404"},
		{"POST", "/twilio/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json", nil, 401, "20003"},
		{"POST", "/meta/v21.0/109876543210987/messages", map[string]string{"Authorization": "Bearer wrong"}, 401, "OAuthException"},
		{"POST", "/callback/ch-api", nil, 401, "bad signature"},
		{"GET", "/media/missing", nil, 404, ""},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.contains) {
			t.Errorf("%s %s = %d %s, want %d containing %q", tc.method, tc.path, resp.StatusCode, b, tc.want, tc.contains)
		}
	}
	if got := srv.BaseURL(KindWhatsApp); got != ts.URL+"/meta/v21.0" {
		t.Errorf("BaseURL(whatsapp) = %s", got)
	}
}

// TestWappiQRAuthorization walks a profile through pending → scanned →
// authorized; the authorization_status webhook passes the adapter's Verify.
func TestWappiQRAuthorization(t *testing.T) {
	srv, fp, _ := newSim(t)
	ctx := context.Background()
	ch := RegisteredChannel{ID: "ch-qr", Kind: KindWappi, WebhookURL: fp.ts.URL + "/webhooks/ch-qr", AuthPending: true,
		Config:  map[string]any{"profile_id": "3a1b2c3d-4e5f", "network": "max"},
		Secrets: map[string]string{"api_token": "0123456789abcdef0123456789abcdef01234567", "webhook_auth": "qr-auth"}}
	if err := srv.Register(ch); err != nil {
		t.Fatal(err)
	}
	ad := wappi.New()
	img, state, err := ad.AuthorizationQR(ctx, cfgOf(srv, ch))
	if err != nil || state != "pending" || !strings.HasPrefix(img, "data:image/png;base64,") {
		t.Fatalf("QR before scan: %q %q %v", img[:min(len(img), 30)], state, err)
	}
	if _, err := ad.Send(ctx, cfgOf(srv, ch), channel.Outgoing{To: "1", Text: "x"}); err == nil {
		t.Fatal("a logged-out profile must refuse sends")
	}
	w := srv.Wappi(ch.Secrets["api_token"])
	if err := w.Scan(ctx, "3a1b2c3d-4e5f"); err != nil {
		t.Fatal(err)
	}
	if err := w.Authorize(ctx, "3a1b2c3d-4e5f"); err != nil {
		t.Fatal(err)
	}
	evs := fp.waitEvents("ch-qr", channel.EventAuth, 1)
	if evs[0].AuthState != "authorized" {
		t.Errorf("auth state %q", evs[0].AuthState)
	}
	if _, state, err := ad.AuthorizationQR(ctx, cfgOf(srv, ch)); err != nil || state != "authorized" {
		t.Errorf("QR after login: %q %v", state, err)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
	}{
		{[]string{"--token", "T", "--workspace", "Acme", "--count", "10", "--channels", "whatsapp,wappi"}, true},
		{[]string{"--email", "a@b.c", "--password", "p", "--duration", "5s", "--rate", "20"}, true},
		{[]string{"--workspace", "Acme"}, false},                                     // no credentials
		{[]string{"--token", "T", "--rate", "0"}, false},                             // bad rate
		{[]string{"--token", "T", "--channels", "whatsapp,fax"}, false},              // unknown channel
		{[]string{"--token", "T", "--count", "-1"}, false},                           // negative
		{[]string{"--token", "T", "extra"}, false},                                   // stray argument
		{[]string{"--token", "T", "--listen", "0.0.0.0:9000", "--seed", "42"}, true}, // listen + seed
	}
	for _, tc := range tests {
		o, _, err := ParseFlags(tc.args, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("ParseFlags(%q) error = %v, want ok=%v", tc.args, err, tc.ok)
		}
		if err == nil && o.Target != "http://127.0.0.1:8080" {
			t.Errorf("default target %q", o.Target)
		}
	}
	if sel, _ := expandChannels([]string{"wappi", "sms"}); strings.Join(sel, ",") != "wappi_whatsapp,wappi_telegram,wappi_max,twilio_sms" {
		t.Errorf("expandChannels = %v", sel)
	}
}

// BenchmarkDeliver measures signed webhooks per second from the stream to
// an HTTP endpoint that verifies and parses them with the real adapters.
func BenchmarkDeliver(b *testing.B) {
	fp := &fakeParley{t: b, reg: adapters(), events: map[string][]channel.Event{}, denied: map[string]int{},
		override: map[string]map[string]string{}, notify: make(chan struct{}, 1)}
	fp.ts = httptest.NewServer(http.HandlerFunc(fp.serve))
	defer fp.ts.Close()
	srv := New(ServerOptions{})
	ts := httptest.NewServer(srv)
	defer func() { srv.Close(); ts.Close() }()
	srv.SetURL(ts.URL)
	fp.srv = srv
	for _, ch := range testChannels(fp.ts.URL) {
		if err := srv.Register(ch); err != nil {
			b.Fatal(err)
		}
	}
	st := srv.NewStream(1, nil)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		d, _ := st.Next()
		if err := srv.Deliver(ctx, d.ChannelID, d.Body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "webhooks/s")
}
