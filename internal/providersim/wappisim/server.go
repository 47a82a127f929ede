// Package wappisim is a fake Wappi API (WhatsApp /api, Telegram /tapi, MAX
// /maxapi) for tests, demos and benchmarks: send/reply/reaction/file endpoints
// validated like the real service, media download, QR and status endpoints
// with an authorization state machine that emits authorization_status
// webhooks, optional outgoing_message_api echoes, failure injection, recorded
// requests, payload builders and a webhook deliverer.
package wappisim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Authorization states of a profile.
const (
	StatePendingQR  = "pending_qr" // not logged in: a QR is offered
	StateScanned    = "scanned"    // QR scanned, syncing
	StateAuthorized = "authorized"
)

// Profile is one connected account.
type Profile struct {
	ID          string
	Network     string // whatsapp|telegram|max
	Phone       string // own number / id
	State       string
	WebhookURL  string
	WebhookAuth string
	EmitEchoes  bool // send outgoing_message_api webhooks after API sends
}

// Request is one recorded API call.
type Request struct {
	Method    string
	Path      string // without the prefix, e.g. "/sync/message/send"
	Prefix    string // /api, /tapi, /maxapi
	ProfileID string
	Query     map[string][]string
	Body      map[string]any
	Time      time.Time
}

// File is media a message carries.
type File struct {
	Data     []byte
	MimeType string
	Name     string
}

// Server is the fake Wappi service.
type Server struct {
	token string

	mu         sync.Mutex
	baseURL    string
	profiles   map[string]*Profile
	requests   []Request
	files      map[string]File // by message id
	links      map[string]string
	chats      map[string][]Chat // by profile id, in listing order
	failN      int
	failStatus int
	seq        int64
	wg         sync.WaitGroup
	ctx        context.Context
	cancel     context.CancelFunc
}

// New returns a fake account with the given api token.
func New(token string) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{token: token, profiles: map[string]*Profile{}, files: map[string]File{}, links: map[string]string{}, chats: map[string][]Chat{},
		ctx: ctx, cancel: cancel}
}

// Chat is one entry of a profile's chat list (sync/chats/get).
type Chat struct {
	ID    string // as the webhooks carry it, e.g. "120363…@g.us"
	Name  string
	Group bool
}

// AddChat lists a chat (a group's title is only found there: webhooks do not carry it).
func (s *Server) AddChat(profileID string, c Chat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chats[profileID] = append(s.chats[profileID], c)
}

// SetBaseURL tells the fake its own URL (used in file_link answers).
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimRight(u, "/")
}

// Close stops background webhook deliveries and waits for them.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

// AddProfile registers a profile (State defaults to authorized).
func (s *Server) AddProfile(p Profile) {
	if p.State == "" {
		p.State = StateAuthorized
	}
	if p.Network == "" {
		p.Network = "whatsapp"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.profiles[p.ID] = &p
}

// Profile returns a copy of a profile.
func (s *Server) Profile(id string) (Profile, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.profiles[id]
	if !ok {
		return Profile{}, false
	}
	return *p, true
}

// AddFile makes media of messageID downloadable.
func (s *Server) AddFile(messageID string, f File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[messageID] = f
}

// FailNext makes the next n API calls fail with status (500 or 429).
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus = n, status
}

// Requests returns a copy of the recorded calls.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Calls returns the recorded calls of one path (e.g. "/sync/message/send").
func (s *Server) Calls(path string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// Scan moves a profile from pending_qr to scanned (the phone read the QR).
func (s *Server) Scan(ctx context.Context, profileID string) error {
	return s.transition(ctx, profileID, StatePendingQR, StateScanned, "")
}

// Authorize completes the login and emits authorization_status "authorized".
func (s *Server) Authorize(ctx context.Context, profileID string) error {
	return s.transition(ctx, profileID, StateScanned, StateAuthorized, "authorized")
}

// Logout drops the session and emits authorization_status "unauthorized".
func (s *Server) Logout(ctx context.Context, profileID string) error {
	return s.transition(ctx, profileID, "", StatePendingQR, "unauthorized")
}

func (s *Server) transition(ctx context.Context, id, from, to, emit string) error {
	s.mu.Lock()
	p, ok := s.profiles[id]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("wappisim: unknown profile %s", id)
	}
	if from != "" && p.State != from {
		st := p.State
		s.mu.Unlock()
		return fmt.Errorf("wappisim: profile %s is %s, not %s", id, st, from)
	}
	p.State = to
	hook, auth := p.WebhookURL, p.WebhookAuth
	s.mu.Unlock()
	if emit == "" || hook == "" {
		return nil
	}
	return Deliver(ctx, hook, auth, AuthorizationStatus(id, emit))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func wErr(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]any{"status": "error", "detail": detail})
}

var prefixes = []string{"/maxapi", "/apimax", "/tapi", "/api"}

// ServeHTTP routes {prefix}/… calls and /files/… downloads.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := strings.CutPrefix(r.URL.Path, "/files/"); ok {
		s.serveLink(w, id)
		return
	}
	pfx, path := "", ""
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(r.URL.Path, p+"/"); ok {
			pfx, path = p, "/"+rest
			break
		}
	}
	if pfx == "" {
		wErr(w, 404, "Not found")
		return
	}
	if r.Header.Get("Authorization") != s.token {
		wErr(w, 401, "Invalid token")
		return
	}
	var body map[string]any
	if r.Body != nil && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			wErr(w, 400, "Invalid JSON body")
			return
		}
	}
	pid := r.URL.Query().Get("profile_id")
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: path, Prefix: pfx, ProfileID: pid,
		Query: r.URL.Query(), Body: body, Time: time.Now()})
	if s.failN > 0 {
		s.failN--
		st := s.failStatus
		s.mu.Unlock()
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "2")
			wErr(w, st, "Too many requests")
		} else {
			wErr(w, st, "Internal server error")
		}
		return
	}
	p, ok := s.profiles[pid]
	var prof Profile
	if ok {
		prof = *p
	}
	s.mu.Unlock()
	if pid == "" {
		wErr(w, 400, "profile_id is required")
		return
	}
	if !ok {
		wErr(w, 404, "Profile not found")
		return
	}
	wantPrefix := map[string]string{"whatsapp": "/api", "telegram": "/tapi", "max": "/maxapi"}[prof.Network]
	if pfx != wantPrefix && !(prof.Network == "max" && pfx == "/apimax") {
		wErr(w, 400, "Profile is not a "+strings.TrimPrefix(pfx, "/")+" profile")
		return
	}
	s.route(w, r, prof, path, body)
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, p Profile, path string, body map[string]any) {
	authorized := p.State == StateAuthorized
	switch path {
	case "/sync/get/status":
		appStatus := "open"
		if !authorized {
			appStatus = "close"
		}
		writeJSON(w, 200, map[string]any{"status": "done", "app_status": appStatus, "authorized": authorized,
			"phone": p.Phone, "webhook_url": p.WebhookURL, "payment_expired_at": "2030-01-01T00:00:00Z", "name": p.ID})
		return
	case "/sync/qr/get", "/sync/auth/qr":
		if authorized {
			wErr(w, 400, "Already authorized")
			return
		}
		img := "data:image/png;base64," + qrPNG(p.ID)
		if path == "/sync/auth/qr" {
			writeJSON(w, 200, map[string]any{"status": "done", "detail": strings.TrimPrefix(img, "data:image/png;base64,")})
			return
		}
		writeJSON(w, 200, map[string]any{"status": "done", "qrCode": img})
		return
	case "/sync/chats/get":
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit <= 0 {
			limit = 100
		}
		offset, _ := strconv.Atoi(q.Get("offset"))
		s.mu.Lock()
		all := append([]Chat(nil), s.chats[p.ID]...)
		s.mu.Unlock()
		dialogs := []map[string]any{}
		for i := offset; i < len(all) && i < offset+limit; i++ {
			c := all[i]
			d := map[string]any{"id": c.ID, "name": c.Name, "type": "user"}
			if c.Group {
				d["type"] = "group"
				d["group"] = map[string]any{"Name": c.Name, "Participants": []any{}}
			}
			dialogs = append(dialogs, d)
		}
		writeJSON(w, 200, map[string]any{"status": "done", "dialogs": dialogs, "total_count": len(all)})
		return
	case "/webhook/url/set":
		u := r.URL.Query().Get("url")
		if u == "" {
			wErr(w, 400, "url is required")
			return
		}
		s.mu.Lock()
		s.profiles[p.ID].WebhookURL = u
		s.profiles[p.ID].WebhookAuth = r.URL.Query().Get("auth")
		s.mu.Unlock()
		writeJSON(w, 200, map[string]any{"status": "done", "detail": "Webhook url set"})
		return
	case "/sync/message/media/download":
		s.mediaDownload(w, r, p)
		return
	}
	if r.Method != http.MethodPost {
		wErr(w, 405, "Method not allowed")
		return
	}
	if !authorized {
		wErr(w, 400, "Profile is not authorized")
		return
	}
	recipient := str(body["recipient"])
	switch path {
	case "/sync/message/send":
		if recipient == "" || strings.TrimSpace(str(body["body"])) == "" {
			wErr(w, 400, "recipient and body are required")
			return
		}
	case "/sync/message/file/url/send":
		u := str(body["url"])
		if recipient == "" || !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
			wErr(w, 400, "recipient and a valid url are required")
			return
		}
	case "/sync/message/reply":
		if str(body["message_id"]) == "" || strings.TrimSpace(str(body["body"])) == "" {
			wErr(w, 400, "body and message_id are required")
			return
		}
	case "/sync/message/reaction":
		if str(body["message_id"]) == "" {
			wErr(w, 400, "message_id is required")
			return
		}
		if p.Network == "telegram" && recipient == "" {
			wErr(w, 400, "recipient is required")
			return
		}
	default:
		wErr(w, 404, "Not found")
		return
	}
	id := s.newID(p.Network)
	now := time.Now()
	writeJSON(w, 200, map[string]any{"status": "done", "timestamp": now.UTC().Format(time.RFC3339), "time": now.Unix(),
		"message_id": id, "task_id": ""})
	if p.EmitEchoes && p.WebhookURL != "" && recipient != "" && path != "/sync/message/reaction" {
		chat := recipient
		if p.Network == "whatsapp" && !strings.Contains(chat, "@") {
			chat += "@c.us"
		}
		echo := EchoAPI(Msg{ProfileID: p.ID, Network: p.Network, ID: id, From: p.Phone, To: chat, ChatID: chat, Type: "chat",
			Body: str(body["body"]), Time: now})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = Deliver(s.ctx, p.WebhookURL, p.WebhookAuth, echo)
		}()
	}
}

func (s *Server) newID(network string) string {
	s.mu.Lock()
	s.seq++
	n := s.seq
	s.mu.Unlock()
	if network == "whatsapp" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		return "3EB0" + strings.ToUpper(hex.EncodeToString(b))
	}
	return fmt.Sprint(1000 + n)
}

func (s *Server) mediaDownload(w http.ResponseWriter, r *http.Request, p Profile) {
	id := r.URL.Query().Get("message_id")
	s.mu.Lock()
	f, ok := s.files[id]
	base := s.baseURL
	s.mu.Unlock()
	if !ok {
		wErr(w, 404, "Message not found")
		return
	}
	if p.Network == "whatsapp" {
		writeJSON(w, 200, map[string]any{"status": "done", "file_b64": base64.StdEncoding.EncodeToString(f.Data),
			"mime_type": f.MimeType, "file_name": f.Name})
		return
	}
	tok := make([]byte, 12)
	_, _ = rand.Read(tok)
	link := hex.EncodeToString(tok)
	s.mu.Lock()
	s.links[link] = id
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"status": "done", "file_link": base + "/files/" + link, "mime_type": f.MimeType})
}

func (s *Server) serveLink(w http.ResponseWriter, link string) {
	s.mu.Lock()
	id, ok := s.links[link]
	f := s.files[id]
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", f.MimeType)
	_, _ = w.Write(f.Data)
}

// qrPNG renders a deterministic 29×29 module pattern (not a scannable QR) as base64 PNG.
func qrPNG(seed string) string {
	const n, scale = 29, 4
	img := image.NewGray(image.Rect(0, 0, n*scale, n*scale))
	h := uint32(2166136261)
	for i := 0; i < len(seed); i++ {
		h = (h ^ uint32(seed[i])) * 16777619
	}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			h ^= h << 13
			h ^= h >> 17
			h ^= h << 5
			c := color.Gray{Y: 255}
			if h&1 == 1 {
				c = color.Gray{Y: 0}
			}
			for dy := 0; dy < scale; dy++ {
				for dx := 0; dx < scale; dx++ {
					img.SetGray(x*scale+dx, y*scale+dy, c)
				}
			}
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}
