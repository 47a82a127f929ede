package providersim

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/apiclient"
)

// AllChannels are the channel selectors Run understands. "wappi" selects
// the three Wappi networks; wappi_whatsapp, wappi_telegram and wappi_max
// select one.
var AllChannels = []string{KindWhatsApp, KindMessenger, KindInstagram, KindTelegram, KindTwilio,
	"wappi_whatsapp", "wappi_telegram", "wappi_max", KindAPI}

// Options configure Run.
type Options struct {
	Target    string // Parley base URL, e.g. http://127.0.0.1:8080
	Workspace string // workspace name or id
	Token     string // API bearer token; or Email+Password
	Email     string
	Password  string
	Listen    string // where the simulator listens (default 127.0.0.1:0)
	PublicURL string // URL Parley uses to reach the simulator (default http://<listen address>)
	Rate      float64
	Duration  time.Duration
	Count     int
	Seed      int64
	Channels  []string // subset of AllChannels (nil = all)
	// ReplyEvery makes an agent answer (through Parley's API) after every
	// ReplyEvery inbound webhooks, so Parley sends and the simulator
	// answers with status webhooks; 0 = never.
	ReplyEvery int

	Logger      *slog.Logger
	Out         io.Writer // progress lines (discarded when nil)
	HTTPClient  *http.Client
	StatusDelay time.Duration
}

// ChannelSummary is the outcome of one simulated channel.
type ChannelSummary struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Network string `json:"network,omitempty"`
	Name    string `json:"name"`
	ChannelStats
}

// Summary is what Run reports.
type Summary struct {
	SimURL    string           `json:"sim_url"`
	Channels  []ChannelSummary `json:"channels"`
	Sent      int              `json:"sent"`
	Failed    int              `json:"failed"`
	Retries   int              `json:"retries"`
	Statuses  int              `json:"statuses"`
	Replies   int              `json:"agent_replies"`
	ReplyErrs int              `json:"agent_reply_errors"`
	ByAction  map[string]int   `json:"by_action"`
	Elapsed   time.Duration    `json:"elapsed"`
	Handshake map[string]bool  `json:"meta_handshake_ok,omitempty"`
}

// Print writes a human-readable summary.
func (s Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "providersim: %d webhooks sent (%d failed, %d retries), %d status webhooks, %d agent replies (%d refused), in %s\n",
		s.Sent, s.Failed, s.Retries, s.Statuses, s.Replies, s.ReplyErrs, s.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "%-28s %-11s %-9s %7s %6s %7s %6s %8s\n", "channel", "kind", "network", "inbound", "failed", "retries", "sends", "statuses")
	for _, c := range s.Channels {
		fmt.Fprintf(w, "%-28s %-11s %-9s %7d %6d %7d %6d %8d\n", c.ID, c.Kind, c.Network, c.Inbound, c.InboundFailed, c.Retries, c.Sends, c.Statuses)
	}
	for id, ok := range s.Handshake {
		if !ok {
			fmt.Fprintf(w, "warning: channel %s did not answer Meta's hub.challenge handshake\n", id)
		}
	}
	keys := make([]string, 0, len(s.ByAction))
	for k := range s.ByAction {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, s.ByAction[k]))
	}
	fmt.Fprintf(w, "actions: %s\n", strings.Join(parts, " "))
}

// api is a client of the Parley API.
type api = apiclient.Client

type wsRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// connect authenticates and resolves the workspace id.
func connect(ctx context.Context, o Options) (*api, string, error) {
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	a := apiclient.New(o.Target, hc)
	a.Token = o.Token
	var me struct {
		Workspaces []wsRef `json:"workspaces"`
		CSRFToken  string  `json:"csrf_token"`
	}
	if a.Token == "" {
		if o.Email == "" || o.Password == "" {
			return nil, "", errors.New("providersim: give --token, or --email and --password")
		}
		if err := a.Do(ctx, http.MethodPost, "/api/v1/auth/login", map[string]string{"email": o.Email, "password": o.Password}, &me); err != nil {
			return nil, "", fmt.Errorf("providersim: login: %w", err)
		}
		a.CSRF = me.CSRFToken
	} else if err := a.Do(ctx, http.MethodGet, "/api/v1/me", nil, &me); err != nil {
		me.Workspaces = nil // a token may not be allowed on /me: treat --workspace as an id
	}
	ws := o.Workspace
	for _, w := range me.Workspaces {
		if w.ID == o.Workspace || strings.EqualFold(w.Name, o.Workspace) {
			ws = w.ID
			break
		}
	}
	if ws == "" {
		if len(me.Workspaces) != 1 {
			return nil, "", errors.New("providersim: --workspace is required")
		}
		ws = me.Workspaces[0].ID
	}
	if a.Token == "" {
		var tok struct {
			Token string `json:"token"`
		}
		if err := a.Do(ctx, http.MethodPost, "/api/v1/workspaces/"+url.PathEscape(ws)+"/tokens",
			map[string]string{"name": "providersim " + time.Now().UTC().Format(time.RFC3339)}, &tok); err != nil {
			return nil, "", fmt.Errorf("providersim: create API token: %w", err)
		}
		if tok.Token != "" {
			a.Token = tok.Token
		}
	}
	return a, ws, nil
}

type createdChannel struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	WebhookURL string `json:"webhook_url"`
}

type channelPlan struct {
	selector string
	kind     string
	network  string
	name     string
	config   map[string]any
	secrets  map[string]string
	ownID    string
	pending  bool
}

func b64(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// plans builds realistic configs and secrets for the selected channels.
func plans(seed int64, selected []string, srv *Server) []channelPlan {
	r := rand.New(rand.NewPCG(uint64(seed), 42))
	sfx := fmt.Sprintf(" (sim %d)", seed)
	var out []channelPlan
	for _, sel := range selected {
		p := channelPlan{selector: sel, kind: sel}
		switch sel {
		case KindWhatsApp:
			p.name = "WhatsApp Cloud" + sfx
			p.ownID = "1555" + digits(r, 7)
			p.config = map[string]any{"phone_number_id": "1" + digits(r, 14), "waba_id": "1" + digits(r, 14)}
			p.secrets = map[string]string{"access_token": "EAAG" + b64(r, 90), "app_secret": hexN(r, 32), "verify_token": hexN(r, 20)}
		case KindMessenger:
			p.name = "Messenger" + sfx
			p.config = map[string]any{"page_id": "1" + digits(r, 14)}
			p.secrets = map[string]string{"page_access_token": "EAAG" + b64(r, 90), "app_secret": hexN(r, 32), "verify_token": hexN(r, 20)}
		case KindInstagram:
			p.name = "Instagram" + sfx
			p.config = map[string]any{"account_id": "17841" + digits(r, 12)}
			p.secrets = map[string]string{"access_token": "IGQV" + b64(r, 90), "app_secret": hexN(r, 32), "verify_token": hexN(r, 20)}
		case KindTelegram:
			p.name = "Telegram bot" + sfx
			p.secrets = map[string]string{"bot_token": digits(r, 10) + ":AA" + b64(r, 25), "webhook_secret": hexN(r, 32)}
		case KindTwilio:
			p.name = "Twilio SMS" + sfx
			p.config = map[string]any{"account_sid": "AC" + hexN(r, 32), "phone_number": "+1555" + digits(r, 7), "mms": true}
			p.secrets = map[string]string{"auth_token": hexN(r, 32)}
		case "wappi_whatsapp", "wappi_telegram", "wappi_max":
			p.kind = KindWappi
			p.network = strings.TrimPrefix(sel, "wappi_")
			p.name = "Wappi " + p.network + sfx
			p.config = map[string]any{"profile_id": hexN(r, 8) + "-" + hexN(r, 4), "network": p.network}
			p.secrets = map[string]string{"webhook_auth": hexN(r, 24)}
			p.ownID = "7916" + digits(r, 7)
			if p.network != "whatsapp" {
				p.ownID = digits(r, 9)
			}
			p.pending = p.network != "telegram"
		case KindAPI:
			p.name = "API" + sfx
			p.config = map[string]any{"callback_url": srv.CallbackURL("cb-" + hexN(r, 12))}
			p.secrets = map[string]string{"hmac_secret": hexN(r, 40)}
		default:
			continue
		}
		if p.config == nil {
			p.config = map[string]any{}
		}
		if p.kind != KindAPI {
			p.config["api_base_url"] = srv.BaseURL(p.kind)
		}
		out = append(out, p)
	}
	return out
}

// expandChannels turns selectors into the list of AllChannels entries.
func expandChannels(sel []string) ([]string, error) {
	if len(sel) == 0 {
		return AllChannels, nil
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range sel {
		s = strings.ToLower(strings.TrimSpace(s))
		var add []string
		switch s {
		case "":
			continue
		case "wappi":
			add = []string{"wappi_whatsapp", "wappi_telegram", "wappi_max"}
		case "twilio", "sms":
			add = []string{KindTwilio}
		default:
			ok := false
			for _, k := range AllChannels {
				ok = ok || k == s
			}
			if !ok {
				return nil, fmt.Errorf("providersim: unknown channel %q (known: %s, wappi)", s, strings.Join(AllChannels, ", "))
			}
			add = []string{s}
		}
		for _, a := range add {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// Run starts the simulator, sets up simulated channels in Parley through its
// API, authorizes the Wappi profiles by QR, then plays customer traffic until
// Count webhooks were sent, Duration passed, or ctx ends.
func Run(ctx context.Context, o Options) (Summary, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	if o.Target == "" {
		return Summary{}, errors.New("providersim: --target is required")
	}
	if o.Rate <= 0 {
		o.Rate = 2
	}
	if o.Duration <= 0 && o.Count <= 0 {
		o.Duration = time.Minute
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	selected, err := expandChannels(o.Channels)
	if err != nil {
		return Summary{}, err
	}

	srv := New(ServerOptions{Logger: o.Logger, StatusDelay: o.StatusDelay})
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return Summary{}, fmt.Errorf("providersim: listen: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	pub := o.PublicURL
	if pub == "" {
		pub = "http://" + ln.Addr().String()
	}
	srv.SetURL(pub)
	fmt.Fprintf(out, "providersim: simulator listening on %s\n", pub)

	a, ws, err := connect(ctx, o)
	if err != nil {
		srv.Close()
		return Summary{}, err
	}
	wsPath := "/api/v1/workspaces/" + url.PathEscape(ws)
	sum := Summary{SimURL: pub, ByAction: map[string]int{}, Handshake: map[string]bool{}}
	names := map[string]ChannelSummary{}

	ps := plans(o.Seed, selected, srv)
	wappiToken, wappiAccount, existingAccount := "", "", false
	for _, p := range ps {
		if p.kind != KindWappi || wappiAccount != "" {
			continue
		}
		r := rand.New(rand.NewPCG(uint64(o.Seed), 7))
		wappiToken = hexN(r, 40)
		var acct struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			Provider string `json:"provider"`
		}
		name := fmt.Sprintf("Wappi (sim %d)", o.Seed)
		body := map[string]any{"provider": "wappi", "name": name,
			"config": map[string]any{"api_base_url": srv.BaseURL(KindWappi)}, "secrets": map[string]string{"api_token": wappiToken}}
		var existing struct {
			Items []struct {
				ID       string `json:"id"`
				Name     string `json:"name"`
				Provider string `json:"provider"`
			} `json:"items"`
		}
		_ = a.Do(ctx, http.MethodGet, wsPath+"/provider-accounts", nil, &existing)
		for _, x := range existing.Items {
			if x.Name == name && x.Provider == "wappi" {
				acct.ID = x.ID
			}
		}
		var err error
		if acct.ID != "" { // same seed, same account: point it at this simulator
			existingAccount = true
			delete(body, "provider")
			err = a.Do(ctx, http.MethodPatch, wsPath+"/provider-accounts/"+url.PathEscape(acct.ID), body, nil)
		} else {
			err = a.Do(ctx, http.MethodPost, wsPath+"/provider-accounts", body, &acct)
		}
		if err != nil {
			srv.Close()
			return Summary{}, fmt.Errorf("providersim: create wappi provider account: %w", err)
		}
		wappiAccount = acct.ID
	}
	// Channels of an earlier run with the same seed have the same secrets:
	// reuse them (pointed at this simulator) instead of piling up copies.
	var existing struct {
		Items []createdChannel `json:"items"`
	}
	_ = a.Do(ctx, http.MethodGet, wsPath+"/channels", nil, &existing)
	var pendingQR []RegisteredChannel
	for _, p := range ps {
		body := map[string]any{"kind": p.kind, "name": p.name, "config": p.config, "secrets": p.secrets}
		if p.kind == KindWappi {
			p.config["provider_account_id"] = wappiAccount
			body["provider_account_id"] = wappiAccount
		}
		var cc createdChannel
		for _, x := range existing.Items {
			if x.Name == p.name && x.Kind == p.kind {
				cc = x
			}
		}
		var err error
		if cc.ID != "" && (p.kind != KindWappi || existingAccount) {
			err = a.Do(ctx, http.MethodPatch, wsPath+"/channels/"+url.PathEscape(cc.ID),
				map[string]any{"config": p.config, "secrets": p.secrets}, &cc)
		} else {
			cc = createdChannel{}
			err = a.Do(ctx, http.MethodPost, wsPath+"/channels", body, &cc)
		}
		if err != nil {
			srv.Close()
			return Summary{}, fmt.Errorf("providersim: create %s channel: %w", p.selector, err)
		}
		if cc.ID == "" || cc.WebhookURL == "" {
			srv.Close()
			return Summary{}, fmt.Errorf("providersim: create %s channel: answer has no id or webhook_url", p.selector)
		}
		secrets := map[string]string{}
		for k, v := range p.secrets {
			secrets[k] = v
		}
		if p.kind == KindWappi {
			secrets["api_token"] = wappiToken
		}
		reg := RegisteredChannel{ID: cc.ID, Kind: p.kind, WebhookURL: cc.WebhookURL, Secrets: secrets, Config: p.config,
			AuthPending: p.pending, OwnID: p.ownID}
		if err := srv.Register(reg); err != nil {
			srv.Close()
			return Summary{}, err
		}
		names[cc.ID] = ChannelSummary{ID: cc.ID, Kind: p.kind, Network: p.network, Name: p.name}
		fmt.Fprintf(out, "providersim: channel %-15s %s  webhook %s\n", p.selector, cc.ID, cc.WebhookURL)
		switch p.kind {
		case KindWhatsApp, KindMessenger, KindInstagram:
			sum.Handshake[cc.ID] = metaHandshake(ctx, a.HTTP, cc.WebhookURL, p.secrets["verify_token"])
		case KindWappi:
			if p.pending {
				pendingQR = append(pendingQR, reg)
			}
		}
	}

	// QR authorization: Parley shows the QR, the phone scans it, the profile logs in.
	for _, reg := range pendingQR {
		var auth map[string]any
		if err := a.Do(ctx, http.MethodGet, wsPath+"/channels/"+url.PathEscape(reg.ID)+"/authorization", nil, &auth); err != nil {
			o.Logger.Warn("providersim: authorization endpoint", "channel", reg.ID, "err", err)
		}
		w := srv.Wappi(reg.Secrets["api_token"])
		pid := reg.str("profile_id")
		if err := w.Scan(ctx, pid); err != nil {
			o.Logger.Warn("providersim: scan", "channel", reg.ID, "err", err)
			continue
		}
		sleep(ctx, 300*time.Millisecond)
		if err := w.Authorize(ctx, pid); err != nil {
			o.Logger.Warn("providersim: authorize", "channel", reg.ID, "err", err)
		}
		fmt.Fprintf(out, "providersim: wappi %s profile %s authorized by QR\n", reg.str("network"), pid)
	}

	start := time.Now()
	stream := srv.NewStream(o.Seed, nil)
	interval := time.Duration(float64(time.Second) / o.Rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var deadline <-chan time.Time
	if o.Duration > 0 {
		t := time.NewTimer(o.Duration)
		defer t.Stop()
		deadline = t.C
	}
	// One ordered queue per channel: a channel whose webhook fails (and is
	// retried with backoff) does not hold up the others.
	dctx, stopDelivery := context.WithCancel(ctx)
	defer stopDelivery()
	queues := map[string]chan Delivery{}
	var workers sync.WaitGroup
	for id := range names {
		q := make(chan Delivery, 256)
		queues[id] = q
		workers.Add(1)
		go func() {
			defer workers.Done()
			for d := range q {
				if err := srv.Deliver(dctx, d.ChannelID, d.Body); err != nil && dctx.Err() == nil {
					o.Logger.Warn("providersim: delivery failed", "channel", d.ChannelID, "action", d.Action, "err", err)
				}
			}
		}()
	}
	lastReport := time.Now()
	n := 0
loop:
	for o.Count <= 0 || n < o.Count {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case <-tick.C:
		}
		d, ok := stream.Next()
		if !ok {
			break
		}
		select {
		case queues[d.ChannelID] <- d:
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		}
		n++
		sum.ByAction[d.Kind+"."+d.Action]++
		if o.ReplyEvery > 0 && n%o.ReplyEvery == 0 {
			if err := agentReply(ctx, a, wsPath, names, n); err != nil {
				sum.ReplyErrs++
				o.Logger.Warn("providersim: agent reply", "err", err)
			} else {
				sum.Replies++
			}
		}
		if time.Since(lastReport) >= 5*time.Second {
			lastReport = time.Now()
			fmt.Fprintf(out, "providersim: %d webhooks queued in %s\n", n, time.Since(start).Round(time.Second))
		}
	}
	for _, q := range queues {
		close(q)
	}
	// give queued webhooks (and their retries) a grace period, then stop
	drained := make(chan struct{})
	go func() { workers.Wait(); close(drained) }()
	grace := time.NewTimer(10 * time.Second)
	select {
	case <-drained:
	case <-grace.C:
		fmt.Fprintln(out, "providersim: gave up on webhooks still queued after 10s")
	case <-ctx.Done():
	}
	grace.Stop()
	stopDelivery()
	<-drained
	// let the status webhooks of Parley's last sends go out
	wctx, cancel := context.WithTimeout(context.Background(), 3*time.Second+4*srv.opts.StatusDelay)
	_ = srv.Wait(wctx)
	cancel()
	srv.Close()
	sum.Elapsed = time.Since(start)
	stats := srv.Stats()
	for id, cs := range names {
		cs.ChannelStats = stats[id]
		sum.Channels = append(sum.Channels, cs)
		sum.Sent += cs.Inbound
		sum.Failed += cs.InboundFailed
		sum.Retries += cs.Retries
		sum.Statuses += cs.Statuses
	}
	sort.Slice(sum.Channels, func(i, j int) bool { return sum.Channels[i].Name < sum.Channels[j].Name })
	return sum, ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// metaHandshake does Meta's subscription check on a webhook URL.
func metaHandshake(ctx context.Context, c *http.Client, webhook, verifyToken string) bool {
	challenge := strconv.Itoa(int(time.Now().UnixNano() % 1e9))
	q := url.Values{"hub.mode": {"subscribe"}, "hub.challenge": {challenge}, "hub.verify_token": {verifyToken}}
	sep := "?"
	if strings.Contains(webhook, "?") {
		sep = "&"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, webhook+sep+q.Encode(), nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == challenge
}

var agentTexts = []string{
	"Hi! Thanks for reaching out — looking into it now.",
	"Здравствуйте! Уточните, пожалуйста, номер заказа.",
	"Your parcel left our warehouse today 📦",
	"¡Claro! Te enviamos el enlace en un momento.",
	"Could you send a photo of the damage?",
}

// agentReply answers the most recent conversation of a simulated channel
// through Parley's API, as an agent would.
func agentReply(ctx context.Context, a *api, wsPath string, ours map[string]ChannelSummary, n int) error {
	var list struct {
		Items []struct {
			ID        string `json:"id"`
			ChannelID string `json:"channel_id"`
		} `json:"items"`
	}
	if err := a.Do(ctx, http.MethodGet, wsPath+"/conversations?view=all&limit=25", nil, &list); err != nil {
		return err
	}
	var ids []string
	for _, c := range list.Items {
		if _, ok := ours[c.ChannelID]; ok {
			ids = append(ids, c.ID)
		}
	}
	if len(ids) == 0 {
		return errors.New("no conversation of a simulated channel yet")
	}
	id := ids[n%len(ids)]
	return a.Do(ctx, http.MethodPost, wsPath+"/conversations/"+url.PathEscape(id)+"/messages",
		map[string]any{"text": agentTexts[n%len(agentTexts)]}, nil)
}
