package providersim

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/internal/providersim/metasim"
)

// Control serves the combined simulator plus a small JSON control API under
// /_sim/ that lets a test in another process (the browser end-to-end suite)
// register Parley channels and play customers:
//
//	POST /_sim/channels                    {"id","kind","webhook_url","secrets","config"} → 204
//	POST /_sim/whatsapp/{channel}/inbound  {"from","name","text","image":false,"caption"} → {"id"}
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

// onePixelPNG is a valid 1×1 PNG, enough for a received image.
var onePixelPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")

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
		id := c.Meta().AddMedia(onePixelPNG, "image/png")
		msg = metasim.WAMedia(in.From, wamid, now.Unix(), "image", id, "image/png", in.Caption, "")
	}
	c.Meta().TouchInbound(in.From, now)
	payload := metasim.WhatsAppPayload(metasim.WAEntry{WABAID: "WABA-SIM", Values: []metasim.WAValue{{
		PhoneNumberID: pnid, DisplayPhone: "15550001111",
		Contacts: []metasim.WAContact{{WaID: in.From, Name: in.Name}}, Messages: []metasim.M{msg},
	}}})
	if err := metasim.Deliver(ctx, ch.WebhookURL, ch.Secrets["app_secret"], payload); err != nil {
		return nil, fmt.Errorf("deliver: %w", err)
	}
	return map[string]string{"id": wamid}, nil
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
