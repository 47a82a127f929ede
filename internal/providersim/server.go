// Package providersim hosts every provider fake (metasim, telegramsim,
// twiliosim, wappisim) behind one http.Handler, each under its own path
// prefix, reacts to Parley's sends like the real services (status webhooks
// signed the provider's way), and plays realistic customer traffic into a
// running Parley (Scenario, Run, Main).
//
//	/meta/v21.0/…            Graph API (WhatsApp, Messenger, Instagram)
//	/whatsapp_business/…     WhatsApp media downloads (Graph hands out root URLs)
//	/telegram/bot<token>/…   Bot API, one fake per bot token
//	/twilio/2010-04-01/…     Twilio REST, one fake per Account SID
//	/wappi/{api,tapi,maxapi} Wappi, one fake per api token
//	/media/<id>              public files (Messenger/Instagram CDN, Wappi file_link, api attachments)
//	/callback/<key>          the "api" channel's callback_url (verifies X-Parley-Signature)
package providersim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/providersim/metasim"
	"github.com/parleyhq/parley/internal/providersim/telegramsim"
	"github.com/parleyhq/parley/internal/providersim/twiliosim"
	"github.com/parleyhq/parley/internal/providersim/wappisim"
)

// Channel kinds the simulator serves.
const (
	KindWhatsApp  = "whatsapp"
	KindMessenger = "messenger"
	KindInstagram = "instagram"
	KindTelegram  = "telegram"
	KindTwilio    = "twilio_sms"
	KindWappi     = "wappi"
	KindAPI       = "api"
)

// GraphVersion is the Graph API version in Meta base URLs.
const GraphVersion = "v21.0"

// ServerOptions tune the Server.
type ServerOptions struct {
	Logger      *slog.Logger  // discarded when nil
	Client      *http.Client  // for webhooks; 10 s timeout when nil
	StatusDelay time.Duration // pause between status steps (sent → delivered → read); default 300 ms
	MaxAttempts int           // webhook delivery attempts; default 5
	Backoff     time.Duration // first retry wait, doubled; default 100 ms
}

// RegisteredChannel is a Parley channel the simulator serves.
type RegisteredChannel struct {
	ID         string
	Kind       string
	WebhookURL string            // Parley's {public}/webhooks/{id}
	Secrets    map[string]string // channel secrets; for wappi also the account's api_token
	Config     map[string]any    // channel config (API.md table)
	// AuthPending starts a Wappi profile logged out, waiting for a QR scan.
	AuthPending bool
	// OwnID is the channel's own address where the config does not say it
	// (Wappi profile phone/id); optional.
	OwnID string
}

func (c *RegisteredChannel) str(k string) string {
	s, _ := c.Config[k].(string)
	return s
}

// ChannelStats are the counters of one channel.
type ChannelStats struct {
	Kind            string `json:"kind"`
	Inbound         int    `json:"inbound"`          // webhooks accepted (2xx)
	InboundFailed   int    `json:"inbound_failed"`   // webhooks given up on
	Retries         int    `json:"retries"`          // extra attempts over all webhooks
	Sends           int    `json:"sends"`            // successful sends by Parley
	Statuses        int    `json:"statuses"`         // status webhooks accepted
	StatusesFailed  int    `json:"statuses_failed"`  // status webhooks given up on
	CallbacksSigned int    `json:"callbacks_signed"` // api channel callbacks with a valid signature
}

type mediaFile struct {
	data []byte
	mime string
	name string
}

// Server is the combined simulator. Create it with New, give it its public
// URL with SetURL (or serve it with Listen), Register channels, then point
// each channel's config.api_base_url at BaseURL(kind).
type Server struct {
	opts ServerOptions
	log  *slog.Logger

	meta *metasim.Server

	mu        sync.Mutex
	url       string
	telegram  map[string]*telegramsim.Server // by bot token
	twilio    map[string]*twiliosim.Server   // by account sid
	twNumbers map[string][]string
	wappi     map[string]*wappisim.Server // by api token
	channels  map[string]*RegisteredChannel
	media     map[string]mediaFile
	wappiChat map[string]string // profile:message id → chat (replies carry no recipient)
	stats     map[string]*ChannelStats

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// New returns an empty simulator.
func New(opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.StatusDelay <= 0 {
		opts.StatusDelay = 300 * time.Millisecond
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 100 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts: opts, log: opts.Logger,
		meta:     metasim.New(metasim.Options{}),
		telegram: map[string]*telegramsim.Server{}, twilio: map[string]*twiliosim.Server{},
		twNumbers: map[string][]string{}, wappi: map[string]*wappisim.Server{},
		channels: map[string]*RegisteredChannel{}, media: map[string]mediaFile{},
		wappiChat: map[string]string{}, stats: map[string]*ChannelStats{},
		ctx: ctx, cancel: cancel,
	}
}

// SetURL tells the server its own base URL (no trailing slash), e.g. the
// httptest server URL. Call it before Register.
func (s *Server) SetURL(u string) {
	s.mu.Lock()
	s.url = strings.TrimRight(u, "/")
	for _, w := range s.wappi {
		w.SetBaseURL(s.url + "/wappi")
	}
	s.mu.Unlock()
}

// URL is the server's base URL.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// BaseURL is the config.api_base_url for a channel kind. For "api" it is the
// base of callback URLs: use CallbackURL.
func (s *Server) BaseURL(kind string) string {
	u := s.URL()
	switch kind {
	case KindWhatsApp, KindMessenger, KindInstagram:
		return u + "/meta/" + GraphVersion
	case KindTelegram:
		return u + "/telegram"
	case KindTwilio:
		return u + "/twilio"
	case KindWappi:
		return u + "/wappi"
	case KindAPI:
		return u + "/callback"
	}
	return u
}

// CallbackURL is the callback_url to give an "api" channel registered with
// key (any URL-safe string; the channel's ID works once known).
func (s *Server) CallbackURL(key string) string {
	return s.BaseURL(KindAPI) + "/" + url.PathEscape(key)
}

// Meta returns the Graph API fake (shared by all Meta channels).
func (s *Server) Meta() *metasim.Server { return s.meta }

// Close stops background webhook deliveries and waits for them.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	ws := make([]*wappisim.Server, 0, len(s.wappi))
	for _, w := range s.wappi {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.Close()
	}
}

// Wait blocks until pending status webhooks are delivered or ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Register makes the simulator serve ch (replacing an earlier registration
// with the same ID).
func (s *Server) Register(ch RegisteredChannel) error {
	c := ch
	if c.Config == nil {
		c.Config = map[string]any{}
	}
	if c.Secrets == nil {
		c.Secrets = map[string]string{}
	}
	if c.ID == "" {
		return fmt.Errorf("providersim: channel without ID")
	}
	switch c.Kind {
	case KindWhatsApp:
		if c.str("phone_number_id") == "" || c.Secrets["access_token"] == "" {
			return fmt.Errorf("providersim: whatsapp channel needs phone_number_id and access_token")
		}
		s.meta.AddWhatsApp(c.str("phone_number_id"), c.Secrets["access_token"])
	case KindMessenger:
		if c.str("page_id") == "" || c.Secrets["page_access_token"] == "" {
			return fmt.Errorf("providersim: messenger channel needs page_id and page_access_token")
		}
		s.meta.AddPage(c.str("page_id"), c.Secrets["page_access_token"])
	case KindInstagram:
		if c.str("account_id") == "" || c.Secrets["access_token"] == "" {
			return fmt.Errorf("providersim: instagram channel needs account_id and access_token")
		}
		s.meta.AddInstagram(c.str("account_id"), c.Secrets["access_token"])
		if p := c.str("page_id"); p != "" {
			s.meta.AddInstagram(p, c.Secrets["access_token"])
		}
	case KindTelegram:
		tok := c.Secrets["bot_token"]
		if tok == "" {
			return fmt.Errorf("providersim: telegram channel needs bot_token")
		}
		s.mu.Lock()
		if s.telegram[tok] == nil {
			s.telegram[tok] = telegramsim.New(tok)
		}
		s.mu.Unlock()
	case KindTwilio:
		sid, tok, num := c.str("account_sid"), c.Secrets["auth_token"], c.str("phone_number")
		if sid == "" || tok == "" {
			return fmt.Errorf("providersim: twilio channel needs account_sid and auth_token")
		}
		s.mu.Lock()
		s.twNumbers[sid] = append(s.twNumbers[sid], num)
		s.twilio[sid] = twiliosim.New(sid, tok, s.twNumbers[sid]...)
		s.mu.Unlock()
	case KindWappi:
		tok, pid := c.Secrets["api_token"], c.str("profile_id")
		if tok == "" || pid == "" {
			return fmt.Errorf("providersim: wappi channel needs the account api_token and profile_id")
		}
		net := c.str("network")
		if net == "" {
			net = "whatsapp"
		}
		s.mu.Lock()
		w := s.wappi[tok]
		if w == nil {
			w = wappisim.New(tok)
			w.SetBaseURL(s.url + "/wappi")
			s.wappi[tok] = w
		}
		s.mu.Unlock()
		state := wappisim.StateAuthorized
		if c.AuthPending {
			state = wappisim.StatePendingQR
		}
		w.AddProfile(wappisim.Profile{ID: pid, Network: net, Phone: c.OwnID, State: state,
			WebhookURL: c.WebhookURL, WebhookAuth: c.Secrets["webhook_auth"]})
	case KindAPI:
		if c.Secrets["hmac_secret"] == "" {
			return fmt.Errorf("providersim: api channel needs hmac_secret")
		}
	default:
		return fmt.Errorf("providersim: unsupported channel kind %q", c.Kind)
	}
	s.mu.Lock()
	s.channels[c.ID] = &c
	if s.stats[c.ID] == nil {
		s.stats[c.ID] = &ChannelStats{Kind: c.Kind}
	}
	s.mu.Unlock()
	return nil
}

// Channel returns a registered channel.
func (s *Server) Channel(id string) (RegisteredChannel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[id]
	if !ok {
		return RegisteredChannel{}, false
	}
	return *c, true
}

// Channels returns the registered channels sorted by ID.
func (s *Server) Channels() []RegisteredChannel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RegisteredChannel, 0, len(s.channels))
	for _, c := range s.channels {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Telegram returns the Bot API fake of a bot token.
func (s *Server) Telegram(token string) *telegramsim.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.telegram[token]
}

// Twilio returns the fake of an Account SID.
func (s *Server) Twilio(accountSid string) *twiliosim.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.twilio[accountSid]
}

// Wappi returns the fake of a Wappi api token.
func (s *Server) Wappi(apiToken string) *wappisim.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wappi[apiToken]
}

// Stats returns a copy of the per-channel counters, by channel ID.
func (s *Server) Stats() map[string]ChannelStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]ChannelStats, len(s.stats))
	for k, v := range s.stats {
		out[k] = *v
	}
	return out
}

func (s *Server) count(id string, f func(*ChannelStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats[id]
	if st == nil {
		st = &ChannelStats{}
		s.stats[id] = st
	}
	f(st)
}

// PutMedia stores a public file served at /media/<id> and returns its URL.
func (s *Server) PutMedia(id string, data []byte, mime, name string) string {
	s.mu.Lock()
	s.media[id] = mediaFile{data: data, mime: mime, name: name}
	u := s.url
	s.mu.Unlock()
	return u + "/media/" + url.PathEscape(id)
}

func (s *Server) rememberWappiChat(profile, msgID, chat string) {
	s.mu.Lock()
	s.wappiChat[profile+":"+msgID] = chat
	s.mu.Unlock()
}

// ---- routing ----

var (
	tgPath      = regexp.MustCompile(`^/telegram(/file)?/bot([^/]+)/`)
	twAcctPath  = regexp.MustCompile(`^/twilio/2010-04-01/Accounts/([^/]+)/`)
	twMediaPath = regexp.MustCompile(`^/twilio/2010-04-01/Accounts/([^/]+)/Messages/[^/]+/Media/([^/]+)$`)
	metaSend    = regexp.MustCompile(`^/meta/(?:v[0-9.]+/)?([^/]+)/messages$`)
)

// ServeHTTP routes to the provider fakes and reacts to successful sends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/meta/"):
		s.proxy(w, r, s.meta, "/meta", s.afterMetaSend)
	case strings.HasPrefix(p, "/whatsapp_business/"):
		s.meta.ServeHTTP(w, r)
	case strings.HasPrefix(p, "/telegram/"):
		m := tgPath.FindStringSubmatch(p)
		var tg *telegramsim.Server
		if m != nil {
			tg = s.Telegram(m[2])
		}
		if tg == nil {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"ok": false, "error_code": 401, "description": "Unauthorized"})
			return
		}
		s.proxy(w, r, tg, "/telegram", nil)
	case strings.HasPrefix(p, "/twilio/"):
		s.serveTwilio(w, r)
	case strings.HasPrefix(p, "/wappi/"):
		s.serveWappi(w, r)
	case strings.HasPrefix(p, "/media/"):
		id, _ := url.PathUnescape(strings.TrimPrefix(p, "/media/"))
		s.mu.Lock()
		f, ok := s.media[id]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", f.mime)
		w.Header().Set("Content-Length", fmt.Sprint(len(f.data)))
		_, _ = w.Write(f.data)
	case strings.HasPrefix(p, "/callback/"):
		s.serveCallback(w, r, strings.TrimPrefix(p, "/callback/"))
	case p == "/" || p == "/healthz":
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "service": "parley providersim"})
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// recorder captures the answer while passing it on.
type recorder struct {
	http.ResponseWriter
	prefix string
	status int
	buf    bytes.Buffer
}

func (c *recorder) WriteHeader(code int) {
	if c.status != 0 {
		return
	}
	c.status = code
	if loc := c.Header().Get("Location"); strings.HasPrefix(loc, "/") && c.prefix != "" {
		c.Header().Set("Location", c.prefix+loc)
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *recorder) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.buf.Len() < 1<<20 {
		c.buf.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

type afterFunc func(r *http.Request, reqBody []byte, status int, answer []byte)

// proxy strips prefix, hands the request to h and then calls after.
func (s *Server) proxy(w http.ResponseWriter, r *http.Request, h http.Handler, prefix string, after afterFunc) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	orig := r.URL.Path
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(orig, prefix)
	r2.URL.RawPath = ""
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	rec := &recorder{ResponseWriter: w, prefix: prefix}
	h.ServeHTTP(rec, r2)
	if after != nil && rec.status/100 == 2 {
		after(r, body, rec.status, rec.buf.Bytes())
	}
}

func (s *Server) serveTwilio(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if m := twMediaPath.FindStringSubmatch(p); m != nil && r.Method == http.MethodGet {
		s.mu.Lock()
		f, ok := s.media[m[2]]
		tw := s.twilio[m[1]]
		s.mu.Unlock()
		if ok {
			user, pass, _ := r.BasicAuth()
			if tw == nil || user != tw.AccountSid || !hmac.Equal([]byte(pass), []byte(tw.AuthToken)) {
				w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
				writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 20003, "message": "Authenticate", "status": 401})
				return
			}
			w.Header().Set("Content-Type", f.mime)
			_, _ = w.Write(f.data)
			return
		}
	}
	if strings.HasPrefix(p, "/twilio/cdn/") {
		s.mu.Lock()
		all := make([]*twiliosim.Server, 0, len(s.twilio))
		for _, t := range s.twilio {
			all = append(all, t)
		}
		s.mu.Unlock()
		tryEach(w, r, "/twilio", all)
		return
	}
	m := twAcctPath.FindStringSubmatch(p)
	var tw *twiliosim.Server
	if m != nil {
		tw = s.Twilio(m[1])
	}
	if tw == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"code": 20404, "message": "The requested resource " + strings.TrimPrefix(p, "/twilio") + " was not found", "status": 404})
		return
	}
	s.proxy(w, r, tw, "/twilio", s.afterTwilioSend)
}

func (s *Server) serveWappi(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/wappi/files/") {
		s.mu.Lock()
		all := make([]*wappisim.Server, 0, len(s.wappi))
		for _, x := range s.wappi {
			all = append(all, x)
		}
		s.mu.Unlock()
		tryEach(w, r, "/wappi", all)
		return
	}
	ws := s.Wappi(r.Header.Get("Authorization"))
	if ws == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"status": "error", "detail": "Invalid token"})
		return
	}
	s.proxy(w, r, ws, "/wappi", s.afterWappiSend)
}

// tryEach serves a token-less download from the first fake that knows it.
func tryEach[H http.Handler](w http.ResponseWriter, r *http.Request, prefix string, hs []H) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
	for _, h := range hs {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r2)
		if rec.Code == http.StatusNotFound {
			continue
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if loc := w.Header().Get("Location"); strings.HasPrefix(loc, "/") {
			w.Header().Set("Location", prefix+loc)
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	http.NotFound(w, r)
}

// serveCallback is the "api" channel's callback_url: it checks the
// signature Parley puts on outgoing messages and answers an external id.
func (s *Server) serveCallback(w http.ResponseWriter, r *http.Request, key string) {
	key, _ = url.PathUnescape(key)
	body, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	want := s.CallbackURL(key)
	var ch *RegisteredChannel
	s.mu.Lock()
	for _, c := range s.channels {
		if c.Kind == KindAPI && (c.ID == key || c.str("callback_url") == want) {
			ch = c
			break
		}
	}
	s.mu.Unlock()
	if ch == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "unknown callback"})
		return
	}
	if !hmac.Equal([]byte(r.Header.Get("X-Parley-Signature")), []byte(signAPI(ch.Secrets["hmac_secret"], body))) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "bad signature"})
		return
	}
	var m struct {
		MessageID string `json:"message_id"`
	}
	_ = json.Unmarshal(body, &m)
	s.count(ch.ID, func(st *ChannelStats) { st.Sends++; st.CallbacksSigned++ })
	ext := "ext-" + m.MessageID
	if m.MessageID == "" {
		sum := sha256.Sum256(body)
		ext = "ext-" + hex.EncodeToString(sum[:8])
	}
	writeJSON(w, http.StatusOK, map[string]any{"external_id": ext})
}

func signAPI(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
