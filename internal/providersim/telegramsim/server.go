// Package telegramsim is a fake Telegram Bot API for tests, demos and
// benchmarks: the send/getFile/file endpoints (validated like the real API),
// recorded requests, failure injection, realistic update payloads and a
// webhook deliverer that authenticates like Telegram.
package telegramsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
)

// Request is one recorded API call.
type Request struct {
	Method string         // Bot API method, e.g. "sendMessage"; "file" for downloads
	Params map[string]any // decoded JSON or form body
	Time   time.Time
}

// File is a downloadable file known to the fake.
type File struct {
	Path     string
	MimeType string
	Data     []byte
}

// Server is the fake Bot API. Create it with New and serve it with httptest.
type Server struct {
	token string
	botID int64

	mu         sync.Mutex
	requests   []Request
	failN      int
	failStatus int
	retryAfter int
	nextID     map[string]int64
	files      map[string]File
	blocked    map[string]bool
}

// New returns a fake for the bot with the given token ("<id>:<secret>").
func New(token string) *Server {
	id, _, _ := strings.Cut(token, ":")
	n, _ := strconv.ParseInt(id, 10, 64)
	return &Server{token: token, botID: n, nextID: map[string]int64{}, files: map[string]File{}, blocked: map[string]bool{}}
}

// Token returns the bot token the fake accepts.
func (s *Server) Token() string { return s.token }

// FailNext makes the next n API calls fail with status (500 or 429; 429
// carries parameters.retry_after = retryAfter seconds).
func (s *Server) FailNext(n, status, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus, s.retryAfter = n, status, retryAfter
}

// Block makes sends to chatID fail with 403 "bot was blocked by the user".
func (s *Server) Block(chatID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked[chatID] = true
}

// AddFile registers a file downloadable by file_id.
func (s *Server) AddFile(fileID string, f File) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[fileID] = f
}

// Requests returns a copy of the recorded calls.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Calls returns the recorded calls of one method.
func (s *Server) Calls(method string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// Reset forgets recorded requests.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiErr(w http.ResponseWriter, status int, desc string, params map[string]any) {
	body := map[string]any{"ok": false, "error_code": status, "description": desc}
	if params != nil {
		body["parameters"] = params
	}
	writeJSON(w, status, body)
}

// ServeHTTP serves /bot<token>/<method> and /file/bot<token>/<path>.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/file/bot"); ok {
		tok, fpath, _ := strings.Cut(rest, "/")
		if tok != s.token {
			apiErr(w, http.StatusUnauthorized, "Unauthorized", nil)
			return
		}
		s.serveFile(w, fpath)
		return
	}
	rest, ok := strings.CutPrefix(p, "/bot")
	if !ok {
		apiErr(w, http.StatusNotFound, "Not Found", nil)
		return
	}
	tok, method, _ := strings.Cut(rest, "/")
	if tok != s.token {
		apiErr(w, http.StatusUnauthorized, "Unauthorized", nil)
		return
	}
	params, err := decodeParams(r)
	if err != nil {
		apiErr(w, http.StatusBadRequest, "Bad Request: "+err.Error(), nil)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: method, Params: params, Time: time.Now()})
	if s.failN > 0 {
		s.failN--
		status, ra := s.failStatus, s.retryAfter
		s.mu.Unlock()
		if status == http.StatusTooManyRequests {
			apiErr(w, status, fmt.Sprintf("Too Many Requests: retry after %d", ra), map[string]any{"retry_after": ra})
		} else {
			apiErr(w, status, "Internal Server Error", nil)
		}
		return
	}
	s.mu.Unlock()
	s.dispatch(w, method, params)
}

func decodeParams(r *http.Request) (map[string]any, error) {
	params := map[string]any{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/json"):
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("can't parse JSON: %v", err)
		}
		for k, v := range m {
			params[k] = v
		}
	case r.Method == http.MethodPost:
		if err := r.ParseForm(); err == nil {
			for k, v := range r.PostForm {
				params[k] = v[0]
			}
		}
	}
	return params, nil
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

func units(s string) int { return len(utf16.Encode([]rune(s))) }

var mediaField = map[string]string{
	"sendPhoto": "photo", "sendDocument": "document", "sendAudio": "audio", "sendVoice": "voice",
	"sendVideo": "video", "sendAnimation": "animation", "sendSticker": "sticker", "sendVideoNote": "video_note",
}

func (s *Server) dispatch(w http.ResponseWriter, method string, p map[string]any) {
	switch method {
	case "getMe":
		writeJSON(w, 200, map[string]any{"ok": true, "result": s.bot()})
		return
	case "answerCallbackQuery":
		if strings.TrimSpace(str(p["callback_query_id"])) == "" {
			apiErr(w, 400, "Bad Request: query is too old and response timeout expired or query ID is invalid", nil)
			return
		}
		writeJSON(w, 200, map[string]any{"ok": true, "result": true})
		return
	case "setWebhook", "deleteWebhook":
		writeJSON(w, 200, map[string]any{"ok": true, "result": true})
		return
	case "getFile":
		id := str(p["file_id"])
		s.mu.Lock()
		f, ok := s.files[id]
		s.mu.Unlock()
		if !ok {
			apiErr(w, 400, "Bad Request: invalid file_id", nil)
			return
		}
		writeJSON(w, 200, map[string]any{"ok": true, "result": map[string]any{
			"file_id": id, "file_unique_id": "U" + id, "file_size": len(f.Data), "file_path": f.Path}})
		return
	}
	chat := str(p["chat_id"])
	if chat == "" {
		apiErr(w, 400, "Bad Request: chat_id is empty", nil)
		return
	}
	s.mu.Lock()
	blocked := s.blocked[chat]
	s.mu.Unlock()
	if blocked {
		apiErr(w, 403, "Forbidden: bot was blocked by the user", nil)
		return
	}
	if method == "setMessageReaction" {
		if str(p["message_id"]) == "" {
			apiErr(w, 400, "Bad Request: message_id is empty", nil)
			return
		}
		writeJSON(w, 200, map[string]any{"ok": true, "result": true})
		return
	}
	msg := map[string]any{}
	switch method {
	case "sendMessage":
		text := str(p["text"])
		if strings.TrimSpace(text) == "" {
			apiErr(w, 400, "Bad Request: message text is empty", nil)
			return
		}
		if units(text) > 4096 {
			apiErr(w, 400, "Bad Request: message is too long", nil)
			return
		}
		msg["text"] = text
	default:
		field, ok := mediaField[method]
		if !ok {
			apiErr(w, 404, "Not Found: method not found", nil)
			return
		}
		src := str(p[field])
		if src == "" {
			apiErr(w, 400, "Bad Request: there is no "+field+" in the request", nil)
			return
		}
		if c := str(p["caption"]); units(c) > 1024 {
			apiErr(w, 400, "Bad Request: message caption is too long", nil)
			return
		} else if c != "" {
			msg["caption"] = c
		}
		msg[field] = map[string]any{"file_id": "sim-" + field, "file_unique_id": "u-" + field}
	}
	s.mu.Lock()
	s.nextID[chat]++
	id := s.nextID[chat] + 1000
	s.mu.Unlock()
	chatObj := map[string]any{"id": json.Number(chat), "type": "private"}
	if _, err := strconv.ParseInt(chat, 10, 64); err != nil {
		chatObj = map[string]any{"id": int64(-1001000000000), "type": "channel", "username": strings.TrimPrefix(chat, "@")}
	} else if strings.HasPrefix(chat, "-100") {
		chatObj["type"] = "supergroup"
	} else if strings.HasPrefix(chat, "-") {
		chatObj["type"] = "group"
	}
	msg["message_id"] = id
	msg["date"] = time.Now().Unix()
	msg["chat"] = chatObj
	msg["from"] = s.bot()
	if rp, ok := p["reply_parameters"].(map[string]any); ok {
		msg["reply_to_message"] = map[string]any{"message_id": rp["message_id"], "chat": chatObj, "date": time.Now().Unix()}
	}
	writeJSON(w, 200, map[string]any{"ok": true, "result": msg})
}

func (s *Server) bot() map[string]any {
	return map[string]any{"id": s.botID, "is_bot": true, "first_name": "Parley Sim Bot", "username": "parley_sim_bot"}
}

func (s *Server) serveFile(w http.ResponseWriter, fpath string) {
	s.mu.Lock()
	var found *File
	for _, f := range s.files {
		if f.Path == fpath {
			f := f
			found = &f
			break
		}
	}
	s.requests = append(s.requests, Request{Method: "file", Params: map[string]any{"path": fpath}, Time: time.Now()})
	s.mu.Unlock()
	if found == nil {
		http.NotFound(w, nil)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream") // as Telegram does
	_, _ = w.Write(found.Data)
}
