package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/apiclient"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/providersim/metasim"
)

// api is a client of the Parley API.
type api = apiclient.Client

func newAPI(base string) *api {
	return apiclient.New(base, &http.Client{Timeout: 60 * time.Second})
}

// workspace is what a benchmark runs in.
type workspace struct {
	base      string
	id        string
	token     string // an admin's (or the given) bearer token
	channelID string
	phoneID   string
	appSecret string
	owner     *api
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// prepare sets up a workspace on a fresh server (or uses target's token)
// and creates a WhatsApp channel with a known app secret.
func prepare(ctx context.Context, base, token, wsID string) (*workspace, error) {
	w := &workspace{base: base, appSecret: "bench-" + randHex(16)}
	if token == "" {
		pw := randHex(12)
		var setup struct {
			Workspace inbox.Workspace `json:"workspace"`
		}
		if err := newAPI(base).Do(ctx, "POST", "/api/v1/setup", map[string]string{"workspace": "Bench", "name": "Bench Owner",
			"email": "bench-owner@example.com", "password": pw}, &setup, http.StatusCreated); err != nil {
			return nil, fmt.Errorf("set-up (the server must be fresh, or pass --target and --token): %w", err)
		}
		wsID = setup.Workspace.ID
		tok, err := loginToken(ctx, base, "bench-owner@example.com", pw, wsID)
		if err != nil {
			return nil, err
		}
		token = tok
	}
	w.token = token
	w.owner = newAPI(base)
	w.owner.Token = token
	if wsID == "" {
		var me struct {
			Workspaces []inbox.WorkspaceRef `json:"workspaces"`
		}
		if err := w.owner.Do(ctx, "GET", "/api/v1/me", nil, &me, http.StatusOK); err != nil {
			return nil, err
		}
		if len(me.Workspaces) == 0 {
			return nil, fmt.Errorf("the token's user belongs to no workspace")
		}
		wsID = me.Workspaces[0].ID
	}
	w.id = wsID
	w.phoneID = fmt.Sprintf("1%014d", time.Now().UnixNano()%1e14)
	var ch inbox.Channel
	if err := w.owner.Do(ctx, "POST", w.ws("/channels"), map[string]any{"kind": "whatsapp", "name": "Bench " + w.phoneID,
		"config":  map[string]any{"phone_number_id": w.phoneID, "waba_id": "bench-waba"},
		"secrets": map[string]string{"access_token": "bench-" + randHex(8), "app_secret": w.appSecret, "verify_token": randHex(8)},
	}, &ch, http.StatusCreated); err != nil {
		return nil, fmt.Errorf("create the WhatsApp channel: %w", err)
	}
	w.channelID = ch.ID
	return w, nil
}

// loginToken logs in with a password and creates an API token.
func loginToken(ctx context.Context, base, email, password, wsID string) (string, error) {
	c := newAPI(base)
	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password}, &me, http.StatusOK); err != nil {
		return "", err
	}
	c.CSRF = me.CSRFToken
	var tok struct {
		Token string `json:"token"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/workspaces/"+wsID+"/tokens", map[string]string{"name": "bench"}, &tok, http.StatusCreated); err != nil {
		return "", err
	}
	return tok.Token, nil
}

func (w *workspace) ws(suffix string) string { return "/api/v1/workspaces/" + w.id + suffix }

// wsURL is the realtime endpoint.
func (w *workspace) wsURL() string {
	return "ws" + strings.TrimPrefix(w.base, "http") + w.ws("/ws")
}

// agentTokens adds n agents and returns a token for each; when the caller
// may not add members (an agent's --token) it returns the caller's token.
func (w *workspace) agentTokens(ctx context.Context, n int) ([]string, error) {
	var out []string
	for i := range n {
		email := fmt.Sprintf("bench-agent-%s-%d@example.com", randHex(3), i)
		pw := randHex(12)
		err := w.owner.Do(ctx, "POST", w.ws("/members"), map[string]string{"email": email, "name": fmt.Sprintf("Agent %d", i),
			"password": pw, "role": "agent"}, nil, http.StatusCreated)
		if ae, ok := err.(*apiclient.Error); ok && ae.Status == http.StatusForbidden && i == 0 {
			return []string{w.token}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("add an agent: %w", err)
		}
		tok, err := loginToken(ctx, w.base, email, pw, w.id)
		if err != nil {
			return nil, err
		}
		out = append(out, tok)
	}
	return out, nil
}

// cursor returns the current change cursor.
func (w *workspace) cursor(ctx context.Context) (string, error) {
	var snap struct {
		Cursor string `json:"cursor"`
	}
	if err := w.owner.Do(ctx, "GET", w.ws("/sync/snapshot"), nil, &snap, http.StatusOK); err != nil {
		return "", err
	}
	return snap.Cursor, nil
}

// webhook is one signed WhatsApp webhook carrying one text message.
type webhook struct {
	wamid  string
	body   []byte
	header http.Header
}

// newWebhook builds a signed webhook from customer from (a phone number).
func (w *workspace) newWebhook(wamid, from string, sec int64, text string) webhook {
	body := metasim.WhatsAppPayload(metasim.WAEntry{WABAID: "bench-waba", Values: []metasim.WAValue{{
		PhoneNumberID: w.phoneID, DisplayPhone: "15550000000",
		Contacts: []metasim.WAContact{{WaID: from, Name: "Customer " + from}},
		Messages: []metasim.M{metasim.WAText(from, wamid, sec, text)},
	}}})
	return webhook{wamid: wamid, body: body, header: metasim.Headers(w.appSecret, body)}
}

// post sends a webhook and reports whether it was acknowledged (2xx).
func (w *workspace) post(ctx context.Context, hc *http.Client, wh webhook) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/webhooks/"+w.channelID, bytes.NewReader(wh.body))
	if err != nil {
		return err
	}
	req.Header = wh.header.Clone()
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}

// keepAliveClient is an HTTP client that keeps up to conns connections open.
func keepAliveClient(conns int) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, IdleConnTimeout: 90 * time.Second,
		DisableCompression: true, ForceAttemptHTTP2: false,
	}}
}

// messageExternalID extracts data.external_id of a message change.
func messageExternalID(data json.RawMessage) string {
	var m struct {
		ExternalID string `json:"external_id"`
	}
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	return m.ExternalID
}
