// Package twiliosim is a fake Twilio Messaging API for tests, demos and
// benchmarks: Messages.json with Basic auth and Twilio-shaped errors, media
// downloads behind auth with a redirect to a CDN, status callbacks, recorded
// requests, failure injection, inbound payload builders and a signed webhook
// deliverer.
package twiliosim

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Request is one recorded API call.
type Request struct {
	Method string
	Path   string
	Form   url.Values
	Time   time.Time
}

// Message is a message accepted by the fake.
type Message struct {
	Sid            string
	To, From, Body string
	MediaURLs      []string
	StatusCallback string
}

type media struct {
	data []byte
	ct   string
}

// Server is the fake Twilio REST API.
type Server struct {
	AccountSid string
	AuthToken  string

	mu         sync.Mutex
	numbers    map[string]bool
	requests   []Request
	messages   map[string]*Message
	order      []string
	media      map[string]media
	failN      int
	failStatus int
	retryAfter int
}

// New returns a fake account owning numbers (E.164) that may send.
func New(accountSid, authToken string, numbers ...string) *Server {
	s := &Server{AccountSid: accountSid, AuthToken: authToken, numbers: map[string]bool{},
		messages: map[string]*Message{}, media: map[string]media{}}
	for _, n := range numbers {
		s.numbers[n] = true
	}
	return s
}

// FailNext makes the next n API calls fail with status (500, 503 or 429).
func (s *Server) FailNext(n, status, retryAfterSeconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus, s.retryAfter = n, status, retryAfterSeconds
}

// Requests returns a copy of the recorded calls.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Messages returns the accepted messages in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.order))
	for _, sid := range s.order {
		out = append(out, *s.messages[sid])
	}
	return out
}

// AddMedia stores a file and returns its path under the account
// (/2010-04-01/Accounts/AC…/Messages/MM…/Media/ME…); prefix it with the server URL.
func (s *Server) AddMedia(data []byte, contentType string) string {
	me := "ME" + randHex(16)
	s.mu.Lock()
	s.media[me] = media{data: data, ct: contentType}
	s.mu.Unlock()
	return "/2010-04-01/Accounts/" + s.AccountSid + "/Messages/MM" + randHex(16) + "/Media/" + me
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func twErr(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "message": msg,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status})
}

var (
	msgPath   = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/Messages\.json$`)
	mediaPath = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/Messages/[^/]+/Media/(ME[0-9a-f]+)$`)
	e164      = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// ServeHTTP serves Messages.json, media (auth, then a redirect to /cdn/…) and /cdn/….
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := strings.CutPrefix(r.URL.Path, "/cdn/"); ok {
		s.mu.Lock()
		m, found := s.media[id]
		s.mu.Unlock()
		if !found {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", m.ct)
		_, _ = w.Write(m.data)
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != s.AccountSid || !hmac.Equal([]byte(pass), []byte(s.AuthToken)) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		twErr(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	_ = r.ParseForm()
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Form: r.PostForm, Time: time.Now()})
	if s.failN > 0 {
		s.failN--
		status, ra := s.failStatus, s.retryAfter
		s.mu.Unlock()
		if status == http.StatusTooManyRequests {
			if ra > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(ra))
			}
			twErr(w, status, 20429, "Too Many Requests")
		} else {
			twErr(w, status, 20500, "Internal Server Error")
		}
		return
	}
	s.mu.Unlock()
	if m := mediaPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodGet {
		if m[1] != s.AccountSid {
			twErr(w, 404, 20404, "The requested resource was not found")
			return
		}
		http.Redirect(w, r, "/cdn/"+m[2], http.StatusTemporaryRedirect)
		return
	}
	m := msgPath.FindStringSubmatch(r.URL.Path)
	if m == nil || r.Method != http.MethodPost {
		twErr(w, 404, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if m[1] != s.AccountSid {
		twErr(w, 404, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	s.createMessage(w, r.PostForm)
}

func (s *Server) createMessage(w http.ResponseWriter, f url.Values) {
	to, from, body := f.Get("To"), f.Get("From"), f.Get("Body")
	mediaURLs := f["MediaUrl"]
	switch {
	case to == "":
		twErr(w, 400, 21604, "A 'To' phone number is required.")
		return
	case !e164.MatchString(to):
		twErr(w, 400, 21211, fmt.Sprintf("The 'To' number %s is not a valid phone number.", to))
		return
	case from == "" && f.Get("MessagingServiceSid") == "":
		twErr(w, 400, 21603, "A 'From' phone number is required.")
		return
	case from != "" && !s.numbers[from]:
		twErr(w, 400, 21606, fmt.Sprintf("The From phone number %s is not a valid, SMS-capable inbound phone number or short code for your account.", from))
		return
	case body == "" && len(mediaURLs) == 0:
		twErr(w, 400, 21602, "Message body is required.")
		return
	case utf8.RuneCountInString(body) > 1600:
		twErr(w, 400, 21617, "The concatenated message body exceeds the 1600 character limit.")
		return
	case len(mediaURLs) > 10:
		twErr(w, 400, 21623, "The number of media files exceeds the limit of 10.")
		return
	}
	prefix := "SM"
	if len(mediaURLs) > 0 {
		prefix = "MM"
	}
	sid := prefix + randHex(16)
	msg := &Message{Sid: sid, To: to, From: from, Body: body, MediaURLs: mediaURLs, StatusCallback: f.Get("StatusCallback")}
	s.mu.Lock()
	s.messages[sid] = msg
	s.order = append(s.order, sid)
	s.mu.Unlock()
	now := time.Now().UTC().Format(time.RFC1123Z)
	writeJSON(w, http.StatusCreated, map[string]any{
		"account_sid": s.AccountSid, "api_version": "2010-04-01", "body": body, "date_created": now,
		"date_sent": nil, "date_updated": now, "direction": "outbound-api", "error_code": nil, "error_message": nil,
		"from": from, "messaging_service_sid": nilIfEmpty(f.Get("MessagingServiceSid")), "num_media": fmt.Sprint(len(mediaURLs)),
		"num_segments": "1", "price": nil, "price_unit": "USD", "sid": sid, "status": "queued", "to": to,
		"uri":              "/2010-04-01/Accounts/" + s.AccountSid + "/Messages/" + sid + ".json",
		"subresource_uris": map[string]string{"media": "/2010-04-01/Accounts/" + s.AccountSid + "/Messages/" + sid + "/Media.json"},
	})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// SendStatus posts a status callback for an accepted message to its
// StatusCallback URL, signed like Twilio.
func (s *Server) SendStatus(ctx context.Context, sid, status, errorCode string) error {
	s.mu.Lock()
	m, ok := s.messages[sid]
	s.mu.Unlock()
	if !ok || m.StatusCallback == "" {
		return fmt.Errorf("twiliosim: no status callback for %s", sid)
	}
	return Deliver(ctx, m.StatusCallback, s.AuthToken, StatusParams(s.AccountSid, sid, m.From, m.To, status, errorCode))
}

// Sign computes X-Twilio-Signature: base64(HMAC-SHA1(token, url + Σ sorted name+value)).
func Sign(authToken, fullURL string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		vals := append([]string(nil), params[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
