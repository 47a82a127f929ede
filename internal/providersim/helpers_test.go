package providersim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	apichannel "github.com/parleyhq/parley/internal/channel/api"
	"github.com/parleyhq/parley/internal/channel/instagram"
	"github.com/parleyhq/parley/internal/channel/messenger"
	"github.com/parleyhq/parley/internal/channel/telegram"
	"github.com/parleyhq/parley/internal/channel/twilio"
	"github.com/parleyhq/parley/internal/channel/wappi"
	"github.com/parleyhq/parley/internal/channel/whatsapp"
)

func adapters() *channel.Registry {
	return channel.NewRegistry(whatsapp.New(), messenger.New(), instagram.New(), telegram.New(),
		twilio.New(), wappi.New(), apichannel.New())
}

// testChannels is one channel of every kind, with realistic secrets.
func testChannels(webhookBase string) []RegisteredChannel {
	wh := func(id string) string {
		if webhookBase == "" {
			return ""
		}
		return webhookBase + "/webhooks/" + id
	}
	wappiTok := "0123456789abcdef0123456789abcdef01234567"
	return []RegisteredChannel{
		{ID: "ch-wa", Kind: KindWhatsApp, WebhookURL: wh("ch-wa"), OwnID: "15550001111",
			Config:  map[string]any{"phone_number_id": "109876543210987", "waba_id": "102030405060708"},
			Secrets: map[string]string{"access_token": "EAAGwa-token", "app_secret": "wa-app-secret", "verify_token": "vt"}},
		{ID: "ch-fb", Kind: KindMessenger, WebhookURL: wh("ch-fb"),
			Config:  map[string]any{"page_id": "111222333444555"},
			Secrets: map[string]string{"page_access_token": "EAAGpage-token", "app_secret": "fb-app-secret", "verify_token": "vt"}},
		{ID: "ch-ig", Kind: KindInstagram, WebhookURL: wh("ch-ig"),
			Config:  map[string]any{"account_id": "17841400000000001"},
			Secrets: map[string]string{"access_token": "IGQVig-token", "app_secret": "ig-app-secret", "verify_token": "vt"}},
		{ID: "ch-tg", Kind: KindTelegram, WebhookURL: wh("ch-tg"),
			Secrets: map[string]string{"bot_token": "7000000001:AAHsimTokenForTests_abc", "webhook_secret": "tg_secret-1"}},
		{ID: "ch-tw", Kind: KindTwilio, WebhookURL: wh("ch-tw"),
			Config:  map[string]any{"account_sid": "AC0123456789abcdef0123456789abcdef", "phone_number": "+15550100002", "mms": true},
			Secrets: map[string]string{"auth_token": "tw-auth-token"}},
		{ID: "ch-wwa", Kind: KindWappi, WebhookURL: wh("ch-wwa"), OwnID: "79160000001",
			Config:  map[string]any{"profile_id": "0a1b2c3d-4e5f", "network": "whatsapp"},
			Secrets: map[string]string{"api_token": wappiTok, "webhook_auth": "wappi-auth-wa"}},
		{ID: "ch-wtg", Kind: KindWappi, WebhookURL: wh("ch-wtg"), OwnID: "500100200",
			Config:  map[string]any{"profile_id": "1a1b2c3d-4e5f", "network": "telegram"},
			Secrets: map[string]string{"api_token": wappiTok, "webhook_auth": "wappi-auth-tg"}},
		{ID: "ch-wmx", Kind: KindWappi, WebhookURL: wh("ch-wmx"), OwnID: "600100200",
			Config:  map[string]any{"profile_id": "2a1b2c3d-4e5f", "network": "max"},
			Secrets: map[string]string{"api_token": wappiTok, "webhook_auth": "wappi-auth-max"}},
		{ID: "ch-api", Kind: KindAPI, WebhookURL: wh("ch-api"),
			Secrets: map[string]string{"hmac_secret": "api-hmac-secret"}},
	}
}

// cfgOf is the channel.Config Parley would hand the adapter for ch.
func cfgOf(srv *Server, ch RegisteredChannel) channel.Config {
	conf := map[string]any{}
	for k, v := range ch.Config {
		conf[k] = v
	}
	sec := map[string]string{}
	acctSec := map[string]string{}
	for k, v := range ch.Secrets {
		if k == "api_token" {
			acctSec[k] = v
			continue
		}
		sec[k] = v
	}
	if srv != nil {
		if ch.Kind == KindAPI {
			conf["callback_url"] = srv.CallbackURL(ch.ID)
		} else {
			conf["api_base_url"] = srv.BaseURL(ch.Kind)
		}
	}
	return channel.Config{ChannelID: ch.ID, Kind: ch.Kind, Config: conf, Secrets: sec, AccountSecrets: acctSec,
		WebhookURL: ch.WebhookURL, HTTPClient: &http.Client{Timeout: 5 * time.Second}}
}

// fakeParley stands in for Parley's POST /webhooks/{id}: it verifies every
// request with the real adapter (401 on mismatch) and parses it.
type fakeParley struct {
	t      testing.TB
	reg    *channel.Registry
	srv    *Server
	ts     *httptest.Server
	mu     sync.Mutex
	events map[string][]channel.Event
	denied map[string]int
	notify chan struct{}
	// override gives Parley other secrets than the simulator signs with.
	override map[string]map[string]string
}

func newFakeParley(t *testing.T) *fakeParley {
	f := &fakeParley{t: t, reg: adapters(), events: map[string][]channel.Event{}, denied: map[string]int{}, override: map[string]map[string]string{}, notify: make(chan struct{}, 1000)}
	f.ts = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.ts.Close)
	return f
}

func (f *fakeParley) serve(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/webhooks/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	ch, ok := f.srv.Channel(id)
	if !ok {
		http.NotFound(w, r)
		return
	}
	a, _ := f.reg.Get(ch.Kind)
	body, _ := io.ReadAll(r.Body)
	req := channel.Request{Method: r.Method, URL: f.ts.URL + r.URL.RequestURI(), Header: r.Header, Body: body, Query: r.URL.Query()}
	cfg := cfgOf(f.srv, ch)
	f.mu.Lock()
	if sec, ok := f.override[id]; ok { // Parley's copy of the secrets differs from the simulator's
		cfg.Secrets = sec
	}
	f.mu.Unlock()
	if err := a.Verify(cfg, req); err != nil {
		f.mu.Lock()
		f.denied[id]++
		f.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	evs, err := a.Parse(cfg, req)
	if err != nil {
		f.t.Errorf("channel %s: Parse: %v\n%s", id, err, body)
	}
	f.mu.Lock()
	f.events[id] = append(f.events[id], evs...)
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
	ct, ack := a.Ack()
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(ack)
}

// waitEvents waits until channel id has at least n events of type typ.
func (f *fakeParley) waitEvents(id string, typ channel.EventType, n int) []channel.Event {
	f.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		f.mu.Lock()
		var got []channel.Event
		for _, e := range f.events[id] {
			if e.Type == typ {
				got = append(got, e)
			}
		}
		f.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-f.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			f.t.Fatalf("channel %s: got %d %s events, want %d", id, len(got), typ, n)
			return nil
		}
	}
}

// newSim starts a simulator and a fake Parley with every test channel registered.
func newSim(t *testing.T) (*Server, *fakeParley, *httptest.Server) {
	t.Helper()
	fp := newFakeParley(t)
	srv := New(ServerOptions{StatusDelay: time.Millisecond, Backoff: time.Millisecond, MaxAttempts: 3})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	srv.SetURL(ts.URL)
	fp.srv = srv
	for _, ch := range testChannels(fp.ts.URL) {
		if err := srv.Register(ch); err != nil {
			t.Fatal(err)
		}
	}
	return srv, fp, ts
}
