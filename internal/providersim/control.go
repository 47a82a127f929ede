package providersim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/internal/providersim/metasim"
	"github.com/parleyhq/parley/internal/providersim/telegramsim"
)

// Control serves the combined simulator plus a small JSON control API under
// /_sim/ that lets a test in another process (the browser end-to-end suite)
// register Parley channels and play customers:
//
//	POST /_sim/channels                    {"id","kind","webhook_url","secrets","config"} → 204
//	POST /_sim/whatsapp/{channel}/inbound  {"from","name","text","image":false,"caption"} → {"id"}
//	POST /_sim/telegram/{channel}/inbound  {"chat_id","chat_title","from_id","from_name","text"} → {"id"}
//	GET  /_sim/requests?channel={channel}  → [{"method","path","status","body","at"}]
//
// The Telegram inbound is a group message when chat_title is set (a
// supergroup; chat_id must then be negative, like Telegram's -100… ids) and a
// private chat with from_id otherwise. Its answer is Parley's external id of
// the message, "<chat id>:<message id>". The requests list is what the fake
// provider API received for the channel, oldest first: for Meta channels the
// HTTP method, path, status and JSON body; for Telegram the Bot API method
// (e.g. "sendMessage") and its parameters.
//
// A registered channel whose config.api_base_url is BaseURL(kind) then gets
// status webhooks back for every message Parley sends through it.
type Control struct {
	*Server
	seq atomic.Int64
}

// NewControl wraps a simulator server with the control API.
func NewControl(s *Server) *Control { return &Control{Server: s} }

// ServeHTTP routes /_sim/ to the control API and everything else to the simulator.
func (c *Control) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/_sim/") {
		c.Server.ServeHTTP(w, r)
		return
	}
	var err error
	status := http.StatusOK
	var out any
	switch parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/"); {
	case r.Method == http.MethodPost && len(parts) == 2 && parts[1] == "channels":
		err, status = c.register(r), http.StatusNoContent
	case r.Method == http.MethodPost && len(parts) == 4 && parts[1] == "whatsapp" && parts[3] == "inbound":
		out, err = c.whatsAppInbound(r.Context(), parts[2], r.Body)
	case r.Method == http.MethodPost && len(parts) == 4 && parts[1] == "telegram" && parts[3] == "inbound":
		out, err = c.telegramInbound(r.Context(), parts[2], r.Body)
	case r.Method == http.MethodGet && len(parts) == 2 && parts[1] == "requests":
		out, err = c.requests(r.URL.Query().Get("channel"))
	default:
		http.Error(w, "unknown control endpoint", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if out == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(out)
}

func (c *Control) register(r *http.Request) error {
	var in struct {
		ID         string            `json:"id"`
		Kind       string            `json:"kind"`
		WebhookURL string            `json:"webhook_url"`
		Secrets    map[string]string `json:"secrets"`
		Config     map[string]any    `json:"config"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in); err != nil {
		return fmt.Errorf("bad channel: %w", err)
	}
	if in.ID == "" || in.Kind == "" || in.WebhookURL == "" {
		return errors.New("id, kind and webhook_url are required")
	}
	return c.Register(RegisteredChannel{ID: in.ID, Kind: in.Kind, WebhookURL: in.WebhookURL, Secrets: in.Secrets, Config: in.Config})
}

// sampleImage returns a 160×120 PNG (a colour gradient) for received
// images: big enough to see in a screenshot and to have a natural size.
func sampleImage() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 160, 120))
	for y := range 120 {
		for x := range 160 {
			img.Set(x, y, color.RGBA{R: uint8(40 + x), G: uint8(90 + y), B: 200, A: 255})
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img) // writing to a bytes.Buffer does not fail
	return b.Bytes()
}

func (c *Control) whatsAppInbound(ctx context.Context, channelID string, body io.Reader) (any, error) {
	var in struct {
		From    string `json:"from"`
		Name    string `json:"name"`
		Text    string `json:"text"`
		Image   bool   `json:"image"`
		Caption string `json:"caption"`
	}
	if err := json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&in); err != nil {
		return nil, fmt.Errorf("bad message: %w", err)
	}
	ch, ok := c.Channel(channelID)
	if !ok || ch.Kind != KindWhatsApp {
		return nil, fmt.Errorf("no registered whatsapp channel %q", channelID)
	}
	if in.From == "" {
		return nil, errors.New("from (a wa_id: digits, no +) is required")
	}
	pnid, _ := ch.Config["phone_number_id"].(string)
	now := time.Now()
	wamid := fmt.Sprintf("wamid.SIM%d%06d", now.UnixNano(), c.seq.Add(1))
	msg := metasim.WAText(in.From, wamid, now.Unix(), in.Text)
	if in.Image {
		id := c.Meta().AddMedia(sampleImage(), "image/png")
		msg = metasim.WAMedia(in.From, wamid, now.Unix(), "image", id, "image/png", in.Caption, "")
	}
	c.Meta().TouchInbound(in.From, now)
	payload := metasim.WhatsAppPayload(metasim.WAEntry{WABAID: "WABA-SIM", Values: []metasim.WAValue{{
		PhoneNumberID: pnid, DisplayPhone: "15550001111",
		Contacts: []metasim.WAContact{{WaID: in.From, Name: in.Name}}, Messages: []metasim.M{msg},
	}}})
	if err := c.Deliver(ctx, channelID, payload); err != nil {
		return nil, fmt.Errorf("deliver: %w", err)
	}
	return map[string]string{"id": wamid}, nil
}

func (c *Control) telegramInbound(ctx context.Context, channelID string, body io.Reader) (any, error) {
	var in struct {
		ChatID    int64  `json:"chat_id"`
		ChatTitle string `json:"chat_title"`
		FromID    int64  `json:"from_id"`
		FromName  string `json:"from_name"`
		Username  string `json:"username"`
		Text      string `json:"text"`
	}
	if err := json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&in); err != nil {
		return nil, fmt.Errorf("bad message: %w", err)
	}
	ch, ok := c.Channel(channelID)
	if !ok || ch.Kind != KindTelegram {
		return nil, fmt.Errorf("no registered telegram channel %q", channelID)
	}
	switch {
	case in.FromID <= 0:
		return nil, errors.New("from_id (a positive Telegram user id) is required")
	case strings.TrimSpace(in.FromName) == "":
		return nil, errors.New("from_name is required")
	case in.Text == "":
		return nil, errors.New("text is required")
	case in.ChatTitle != "" && in.ChatID >= 0:
		return nil, errors.New("a group chat_id is negative (e.g. -1001234567890)")
	case in.ChatTitle == "" && in.ChatID != 0 && in.ChatID != in.FromID:
		return nil, errors.New("a chat without chat_title is the private chat with from_id: leave chat_id out")
	}
	first, last, _ := strings.Cut(strings.TrimSpace(in.FromName), " ")
	from := telegramsim.User{ID: in.FromID, FirstName: first, LastName: strings.TrimSpace(last), Username: in.Username}
	chat := telegramsim.Private(from)
	if in.ChatTitle != "" {
		chat = telegramsim.Chat{ID: in.ChatID, Type: "supergroup", Title: in.ChatTitle}
	}
	n := c.seq.Add(1)
	now := time.Now()
	update := telegramsim.MessageUpdate(telegramsim.Msg{
		UpdateID: now.Unix()*1000 + n, MessageID: n, Chat: chat, From: &from, Date: now, Text: in.Text,
	})
	if err := c.Deliver(ctx, channelID, update); err != nil {
		return nil, fmt.Errorf("deliver: %w", err)
	}
	return map[string]string{"id": fmt.Sprintf("%d:%d", chat.ID, n)}, nil
}

// SimRequest is one call the fake provider API received, as GET /_sim/requests lists it.
type SimRequest struct {
	Method string    `json:"method"`           // HTTP method (Meta) or Bot API method (Telegram)
	Path   string    `json:"path,omitempty"`   // Meta: the Graph path as received
	Status int       `json:"status,omitempty"` // Meta: the simulator's answer
	Body   any       `json:"body,omitempty"`   // decoded JSON body (Meta) or parameters (Telegram)
	At     time.Time `json:"at"`
}

// requests lists what the fake API received for a registered channel.
func (c *Control) requests(channelID string) (any, error) {
	if channelID == "" {
		return nil, errors.New("channel is required")
	}
	ch, ok := c.Channel(channelID)
	if !ok {
		return nil, fmt.Errorf("no registered channel %q", channelID)
	}
	out := []SimRequest{}
	switch ch.Kind {
	case KindWhatsApp, KindMessenger, KindInstagram:
		var ids []string
		for _, k := range []string{"phone_number_id", "page_id", "account_id"} {
			if v := ch.str(k); v != "" {
				ids = append(ids, v)
			}
		}
		tok := ch.Secrets["access_token"]
		if tok == "" {
			tok = ch.Secrets["page_access_token"]
		}
		for _, r := range c.Meta().Requests() {
			if !metaRequestOf(r, ids, tok) {
				continue
			}
			sr := SimRequest{Method: r.Method, Path: r.Path, Status: r.Status, At: r.At}
			if m := r.JSON(); m != nil {
				sr.Body = m
			}
			out = append(out, sr)
		}
	case KindTelegram:
		if tg := c.Telegram(ch.Secrets["bot_token"]); tg != nil {
			for _, r := range tg.Requests() {
				out = append(out, SimRequest{Method: r.Method, Body: r.Params, At: r.Time})
			}
		}
	default:
		return nil, fmt.Errorf("requests are not recorded for %s channels", ch.Kind)
	}
	return out, nil
}

// metaRequestOf reports whether a Graph API request was made for a channel:
// its path names one of the channel's ids, or it carries the channel's token
// (media downloads name only the media).
func metaRequestOf(r metasim.Request, ids []string, token string) bool {
	for _, seg := range strings.Split(r.Path, "/") {
		if seg != "" && slices.Contains(ids, seg) {
			return true
		}
	}
	if token == "" {
		return false
	}
	if r.Header.Get("Authorization") == "Bearer "+token {
		return true
	}
	for _, v := range r.Query["access_token"] {
		if v == token {
			return true
		}
	}
	return false
}

// serveMain runs `parley sim serve`: the simulator with its control API until ctx ends.
func serveMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	delay := fs.Duration("status-delay", 300*time.Millisecond, "pause between the status webhooks of one send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("providersim: listen: %w", err)
	}
	srv := New(ServerOptions{StatusDelay: *delay})
	srv.SetURL("http://" + ln.Addr().String())
	hs := &http.Server{Handler: NewControl(srv), ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = hs.Close() }()
	fmt.Fprintf(stdout, "providersim: simulator listening on %s\n", srv.URL())
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	srv.Close()
	return nil
}
