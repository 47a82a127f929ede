// Package metasim is a faithful fake of Meta's Graph API for WhatsApp Cloud
// API, Messenger and Instagram Messaging: the send endpoints (auth, body
// validation, 24 h window, realistic success and error JSON), the WhatsApp
// media endpoints, profile lookups, fault injection, request recording, plus
// webhook payload builders and a signing, retrying webhook deliverer.
//
// Paths may carry a Graph version prefix (/v21.0/...); it is ignored, so the
// adapters' api_base_url can be server.URL+"/v21.0".
package metasim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Options tune the simulator.
type Options struct {
	// EnforceWindow refuses free-form messages to users the simulator never
	// saw write (TouchInbound). Users with a known last inbound time are
	// always checked against the 24 h window (7 days with HUMAN_AGENT).
	EnforceWindow bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Request is one request the simulator received.
type Request struct {
	Method string
	Path   string // as received, with the version prefix
	Query  map[string][]string
	Header http.Header
	Body   []byte
	At     time.Time
	// Status and Response are what the simulator answered.
	Status   int
	Response []byte
}

// JSON decodes the body into a generic map (nil when not JSON).
func (r Request) JSON() map[string]any {
	var m map[string]any
	if json.Unmarshal(r.Body, &m) != nil {
		return nil
	}
	return m
}

type product int

const (
	prodWhatsApp product = iota + 1
	prodMessenger
	prodInstagram
)

type account struct {
	product product
	id      string
	token   string
}

type mediaItem struct {
	data []byte
	mime string
}

type fault struct {
	status int
	code   int
	msg    string
}

// Server is the fake Graph API. It is an http.Handler; all methods are safe
// for concurrent use.
type Server struct {
	opts Options

	mu          sync.Mutex
	accounts    map[string]account // by id
	lastInbound map[string]time.Time
	media       map[string]mediaItem
	profiles    map[string]map[string]any
	faults      []fault
	requests    []Request
	seq         int
}

// New returns an empty simulator.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{
		opts:        opts,
		accounts:    map[string]account{},
		lastInbound: map[string]time.Time{},
		media:       map[string]mediaItem{},
		profiles:    map[string]map[string]any{},
	}
}

// AddWhatsApp registers a business phone number id and its access token.
func (s *Server) AddWhatsApp(phoneNumberID, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[phoneNumberID] = account{prodWhatsApp, phoneNumberID, token}
}

// AddPage registers a Facebook Page and its page access token (Messenger).
func (s *Server) AddPage(pageID, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[pageID] = account{prodMessenger, pageID, token}
}

// AddInstagram registers an Instagram account id (or the Page id used to
// send for it) and its token.
func (s *Server) AddInstagram(id, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[id] = account{prodInstagram, id, token}
}

// TouchInbound records that user wrote at t (opens the 24 h window).
func (s *Server) TouchInbound(user string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastInbound[user] = t
}

// AddMedia stores a file and returns its WhatsApp media id.
func (s *Server) AddMedia(data []byte, mime string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("%d%06d", 1000000000+s.seq, s.seq)
	s.media[id] = mediaItem{data: append([]byte(nil), data...), mime: mime}
	return id
}

// SetProfile sets what GET /{id}?fields=... answers for a PSID or IGSID.
func (s *Server) SetProfile(id string, fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.profiles[id] = fields
}

// FailNext makes the next n API calls fail with HTTP 500 and a transient
// Graph error (code 2).
func (s *Server) FailNext(n int) {
	s.FailNextWith(n, http.StatusInternalServerError, 2, "An unexpected error has occurred. Please retry your request later.")
}

// FailNextWith makes the next n API calls fail with status and Graph code.
func (s *Server) FailNextWith(n, status, code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status, code, msg})
	}
}

// Requests returns a copy of every request received, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Sends returns the received POST .../messages requests.
func (s *Server) Sends() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/messages") {
			out = append(out, r)
		}
	}
	return out
}

// Reset forgets recorded requests and pending faults.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
	s.faults = nil
}

var versionRe = regexp.MustCompile(`^v\d+(\.\d+)?$`)

// ServeHTTP implements the Graph API subset.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	w := &capture{ResponseWriter: rw}
	s.mu.Lock()
	idx := len(s.requests)
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(),
		Body: body, At: s.opts.Now(),
	})
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if idx < len(s.requests) { // Reset may have dropped it
			s.requests[idx].Status = w.status
			if w.isJSON {
				s.requests[idx].Response = w.buf
			}
		}
		s.mu.Unlock()
	}()
	s.serve(w, r, body)
}

// capture keeps the status and (JSON) answer of a request.
type capture struct {
	http.ResponseWriter
	status int
	isJSON bool
	buf    []byte
}

func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
		c.isJSON = strings.HasPrefix(c.Header().Get("Content-Type"), "application/json")
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	if c.isJSON {
		c.buf = append(c.buf, b...)
	}
	return c.ResponseWriter.Write(b)
}

// SentIDs returns the message ids (wamid/mid) of successful sends, oldest first.
func (s *Server) SentIDs() []string {
	var out []string
	for _, r := range s.Sends() {
		if r.Status != http.StatusOK {
			continue
		}
		var ans struct {
			MessageID string `json:"message_id"`
			Messages  []struct {
				ID string `json:"id"`
			} `json:"messages"`
		}
		if json.Unmarshal(r.Response, &ans) != nil {
			continue
		}
		if ans.MessageID != "" {
			out = append(out, ans.MessageID)
		}
		for _, m := range ans.Messages {
			out = append(out, m.ID)
		}
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, body []byte) {
	s.mu.Lock()
	var f *fault
	if len(s.faults) > 0 {
		f = &s.faults[0]
		s.faults = s.faults[1:]
	}
	s.mu.Unlock()
	if f != nil {
		writeError(w, f.status, f.code, 0, f.msg, f.status >= 500, "")
		return
	}

	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) > 0 && versionRe.MatchString(parts[0]) {
		parts = parts[1:]
	}
	switch {
	case len(parts) == 2 && parts[1] == "messages" && r.Method == http.MethodPost:
		s.serveSend(w, r, parts[0], body)
	case len(parts) >= 2 && parts[0] == "whatsapp_business" && parts[1] == "attachments" && r.Method == http.MethodGet:
		s.serveDownload(w, r)
	case len(parts) == 1 && parts[0] != "" && r.Method == http.MethodGet:
		s.serveNode(w, r, parts[0])
	default:
		writeError(w, http.StatusBadRequest, 100, 0, fmt.Sprintf("Unsupported %s request. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api", strings.ToLower(r.Method)), false, "")
	}
}

func token(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	return r.URL.Query().Get("access_token")
}

// authorized finds the account a token belongs to.
func (s *Server) byToken(tok string) (account, bool) {
	if tok == "" {
		return account{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.accounts {
		if a.token == tok {
			return a, true
		}
	}
	return account{}, false
}

func (s *Server) anyToken(tok string) bool {
	_, ok := s.byToken(tok)
	return ok
}

func writeInvalidToken(w http.ResponseWriter) {
	writeError(w, http.StatusUnauthorized, 190, 0, "Invalid OAuth access token - Cannot parse access token", false, "")
}

func traceID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("x-fb-trace-id", traceID())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status, code, subcode int, msg string, transient bool, details string) {
	e := map[string]any{
		"message":    msg,
		"type":       "OAuthException",
		"code":       code,
		"fbtrace_id": traceID(),
	}
	if subcode != 0 {
		e["error_subcode"] = subcode
	}
	if transient {
		e["is_transient"] = true
	}
	if details != "" {
		e["error_data"] = map[string]string{"messaging_product": "whatsapp", "details": details}
	}
	if code == 190 {
		w.Header().Set("WWW-Authenticate", `OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token - Cannot parse access token"`)
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func (s *Server) serveNode(w http.ResponseWriter, r *http.Request, id string) {
	tok := token(r)
	if !s.anyToken(tok) {
		writeInvalidToken(w)
		return
	}
	s.mu.Lock()
	m, isMedia := s.media[id]
	prof, isProfile := s.profiles[id]
	s.mu.Unlock()
	switch {
	case isMedia:
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		sum := sha256hex(m.data)
		writeJSON(w, http.StatusOK, map[string]any{
			"messaging_product": "whatsapp",
			"url":               fmt.Sprintf("%s://%s/whatsapp_business/attachments/?mid=%s&ext=%d&hash=%s", scheme, r.Host, id, time.Now().Unix(), sum[:16]),
			"mime_type":         m.mime,
			"sha256":            sum,
			"file_size":         len(m.data),
			"id":                id,
		})
	case isProfile:
		out := map[string]any{"id": id}
		fields := r.URL.Query().Get("fields")
		for k, v := range prof {
			if fields == "" || containsField(fields, k) {
				out[k] = v
			}
		}
		writeJSON(w, http.StatusOK, out)
	default:
		writeError(w, http.StatusBadRequest, 100, 33, fmt.Sprintf("Unsupported get request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", id), false, "")
	}
}

func containsField(list, f string) bool {
	for _, x := range strings.Split(list, ",") {
		if strings.TrimSpace(x) == f {
			return true
		}
	}
	return false
}

func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request) {
	if !s.anyToken(token(r)) {
		// the real CDN answers 401/404 with an HTML page without the Bearer token
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := r.URL.Query().Get("mid")
	s.mu.Lock()
	m, ok := s.media[id]
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", m.mime)
	w.Header().Set("Content-Length", fmt.Sprint(len(m.data)))
	_, _ = w.Write(m.data)
}

func (s *Server) serveSend(w http.ResponseWriter, r *http.Request, id string, body []byte) {
	tok := token(r)
	var acct account
	var ok bool
	if id == "me" {
		acct, ok = s.byToken(tok)
		if ok && acct.product == prodWhatsApp {
			ok = false
		}
	} else {
		s.mu.Lock()
		acct, ok = s.accounts[id]
		s.mu.Unlock()
		if ok && acct.token != tok {
			writeInvalidToken(w)
			return
		}
		if !ok {
			if s.anyToken(tok) {
				writeError(w, http.StatusBadRequest, 100, 33, fmt.Sprintf("Unsupported post request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", id), false, "")
				return
			}
		}
	}
	if !ok {
		writeInvalidToken(w)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		writeError(w, http.StatusBadRequest, 100, 0, "(#100) Invalid JSON for postcard", false, "")
		return
	}
	switch acct.product {
	case prodWhatsApp:
		s.sendWhatsApp(w, m)
	default:
		s.sendMessaging(w, acct, m)
	}
}

func (s *Server) windowOpen(user string, window time.Duration) bool {
	s.mu.Lock()
	last, known := s.lastInbound[user]
	s.mu.Unlock()
	if !known {
		return !s.opts.EnforceWindow
	}
	return s.opts.Now().Sub(last) <= window
}

func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

func (s *Server) sendWhatsApp(w http.ResponseWriter, m map[string]any) {
	bad := func(msg string) {
		writeError(w, http.StatusBadRequest, 100, 0, "(#100) "+msg, false, "")
	}
	if str(m, "messaging_product") != "whatsapp" {
		bad("The parameter messaging_product is required.")
		return
	}
	to := str(m, "to")
	if to == "" {
		to = str(m, "recipient")
	}
	if to == "" {
		bad("The parameter to is required.")
		return
	}
	typ := str(m, "type")
	if typ == "" {
		typ = "text"
	}
	obj, _ := m[typ].(map[string]any)
	if obj == nil {
		bad(fmt.Sprintf("The parameter %s is required.", typ))
		return
	}
	switch typ {
	case "text":
		b := str(obj, "body")
		if b == "" {
			bad("The parameter text['body'] is required.")
			return
		}
		if utf8.RuneCountInString(b) > 4096 {
			bad("Param text['body'] must be at most 4096 characters long.")
			return
		}
	case "image", "video", "audio", "document", "sticker":
		if str(obj, "link") == "" && str(obj, "id") == "" {
			bad(fmt.Sprintf("Param %s must contain either id or link.", typ))
			return
		}
		if c := str(obj, "caption"); utf8.RuneCountInString(c) > 1024 {
			bad("Param caption must be at most 1024 characters long.")
			return
		}
	case "reaction":
		if str(obj, "message_id") == "" {
			bad("The parameter reaction['message_id'] is required.")
			return
		}
		if _, ok := obj["emoji"]; !ok {
			bad("The parameter reaction['emoji'] is required.")
			return
		}
	case "template":
		if str(obj, "name") == "" || str(obj, "language", "code") == "" {
			bad("The parameter template['name'] and template['language']['code'] are required.")
			return
		}
	case "location", "contacts", "interactive":
	default:
		bad(fmt.Sprintf("Param type must be one of {AUDIO, CONTACTS, DOCUMENT, IMAGE, INTERACTIVE, LOCATION, REACTION, STICKER, TEMPLATE, TEXT, VIDEO} - got %q.", typ))
		return
	}
	if typ != "template" && !s.windowOpen(to, 24*time.Hour) {
		writeError(w, http.StatusBadRequest, 131047, 2494078, "(#131047) Re-engagement message", false,
			"Message failed to send because more than 24 hours have passed since the customer last replied to this number.")
		return
	}
	contact := map[string]any{"input": to}
	if str(m, "to") != "" {
		contact["wa_id"] = strings.TrimPrefix(to, "+")
	} else {
		contact["user_id"] = to
	}
	msg := map[string]any{"id": s.wamid(to)}
	if typ == "template" {
		msg["message_status"] = "accepted"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"messaging_product": "whatsapp",
		"contacts":          []any{contact},
		"messages":          []any{msg},
	})
}

// wamid builds an id shaped like Meta's: "wamid." + base64 of a protobuf-ish blob.
func (s *Server) wamid(to string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	blob := append([]byte{0x48, 0x42, 0x67, byte(len(to))}, []byte(to)...)
	blob = append(blob, 0x15, 0x02, 0x00, 0x11, 0x18, 0x12)
	blob = append(blob, []byte(strings.ToUpper(hex.EncodeToString(b)))...)
	blob = append(blob, 0x00)
	return "wamid." + base64.StdEncoding.EncodeToString(blob)
}

func (s *Server) mid(prod product) string {
	n := 24
	if prod == prodInstagram {
		n = 140 // IG mids exceed 150 characters once encoded
	}
	b := make([]byte, n)
	_, _ = rand.Read(b)
	if prod == prodInstagram {
		return "aWdfZAG1faXRlbTox" + base64.RawURLEncoding.EncodeToString(b)
	}
	return "m_" + base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) sendMessaging(w http.ResponseWriter, acct account, m map[string]any) {
	bad := func(msg string) {
		writeError(w, http.StatusBadRequest, 100, 0, "(#100) "+msg, false, "")
	}
	to := str(m, "recipient", "id")
	if to == "" {
		bad("param recipient must be non-empty.")
		return
	}
	if action := str(m, "sender_action"); action != "" {
		switch action {
		case "typing_on", "typing_off", "mark_seen":
		case "react", "unreact":
			if str(m, "payload", "message_id") == "" {
				bad("param payload[message_id] must be non-empty.")
				return
			}
			if action == "react" && str(m, "payload", "reaction") == "" {
				bad("param payload[reaction] must be non-empty.")
				return
			}
		default:
			bad("param sender_action must be one of {TYPING_ON, TYPING_OFF, MARK_SEEN, REACT, UNREACT}.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"recipient_id": to})
		return
	}
	mt := str(m, "messaging_type")
	switch mt {
	case "RESPONSE", "UPDATE":
	case "MESSAGE_TAG":
		if str(m, "tag") == "" {
			bad("param tag must be non-empty when messaging_type is MESSAGE_TAG.")
			return
		}
	case "":
		bad("param messaging_type must be non-empty.")
		return
	default:
		bad("param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}.")
		return
	}
	msg, _ := m["message"].(map[string]any)
	if msg == nil {
		bad("param message must be non-empty.")
		return
	}
	text, hasText := msg["text"].(string)
	att, hasAtt := msg["attachment"].(map[string]any)
	if hasText == hasAtt {
		bad("Exactly one of message[text] or message[attachment] must be set.")
		return
	}
	if hasText {
		if text == "" {
			bad("param message[text] must be non-empty.")
			return
		}
		if acct.product == prodInstagram && len(text) > 1000 {
			bad("Length of param message[text] must be less than or equal to 1000")
			return
		}
		if acct.product == prodMessenger && utf8.RuneCountInString(text) > 2000 {
			bad("Length of param message[text] must be less than or equal to 2000")
			return
		}
	}
	if hasAtt {
		switch str(att, "type") {
		case "image", "video", "audio", "file", "template":
		default:
			bad("param message[attachment][type] must be one of {IMAGE, VIDEO, AUDIO, FILE, TEMPLATE}.")
			return
		}
		if str(att, "type") != "template" && str(att, "payload", "url") == "" && str(att, "payload", "attachment_id") == "" {
			bad("param message[attachment][payload][url] must be non-empty.")
			return
		}
	}
	window := 24 * time.Hour
	if mt == "MESSAGE_TAG" && str(m, "tag") == "HUMAN_AGENT" {
		window = 7 * 24 * time.Hour
	}
	if mt != "UPDATE" && !s.windowOpen(to, window) || mt == "UPDATE" && !s.windowOpen(to, 24*time.Hour) {
		writeError(w, http.StatusBadRequest, 10, 2018278, "(#10) This message is sent outside of allowed window.", false, "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"recipient_id": to, "message_id": s.mid(acct.product)})
}
