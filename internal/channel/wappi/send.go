package wappi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/meta"
	"github.com/parleyhq/parley/internal/inbox"
)

// apiResp is Wappi's answer: {"status":"done"|"error", …}.
type apiResp struct {
	Status     flexString `json:"status"`
	Detail     flexString `json:"detail"`
	MessageID  flexString `json:"message_id"`
	TaskID     flexString `json:"task_id"`
	FileB64    string     `json:"file_b64"`
	FileLink   string     `json:"file_link"`
	MimeType   flexString `json:"mime_type"`
	MimeType2  flexString `json:"mimetype"`
	QRCode     string     `json:"qrCode"`
	QRCode2    string     `json:"qr_code"`
	QR         string     `json:"qr"`
	Base64     string     `json:"base64"`
	AppStatus  flexString `json:"app_status"`
	Authorized flexString `json:"authorized"`
	Raw        []byte     `json:"-"` // the whole answer
}

type client struct {
	base    string
	prefix  string
	token   string
	profile string
	http    *http.Client
}

func newClient(cfg channel.Config) (*client, error) {
	c := &client{
		base:    strings.TrimRight(cfg.BaseURL(DefaultBaseURL), "/"),
		prefix:  prefix(cfg),
		token:   cfg.Secret("api_token"),
		profile: cfg.String("profile_id"),
		http:    cfg.Client(),
	}
	if c.token == "" || c.profile == "" {
		return nil, &channel.SendError{Code: "config", Reason: "wappi api_token (provider account) or profile_id is not configured"}
	}
	return c, nil
}

func netErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &channel.SendError{Retryable: true, Code: "network", Reason: err.Error()}
}

// do calls {base}{prefix}{path}?profile_id=…&extra with Authorization: <token>.
func (c *client) do(ctx context.Context, method, path string, extra url.Values, body any) (apiResp, error) {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("profile_id", c.profile)
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiResp{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+c.prefix+path+"?"+q.Encode(), rd)
	if err != nil {
		return apiResp{}, &channel.SendError{Code: "config", Reason: err.Error()}
	}
	req.Header.Set("Authorization", c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return apiResp{}, netErr(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return apiResp{}, netErr(err)
	}
	var r apiResp
	jsonErr := json.Unmarshal(data, &r)
	if resp.StatusCode/100 == 2 && jsonErr == nil && strings.ToLower(string(r.Status)) != "error" {
		r.Raw = data
		return r, nil
	}
	se := &channel.SendError{HTTPStatus: resp.StatusCode, Code: strconv.Itoa(resp.StatusCode), Reason: string(r.Detail)}
	if se.Reason == "" {
		se.Reason = fmt.Sprintf("wappi answered HTTP %d", resp.StatusCode)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		se.Retryable = true
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.RetryAfter = time.Duration(s) * time.Second
		}
	case resp.StatusCode >= 500:
		se.Retryable = true
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		se.Reason = "wappi rejected the api token: " + se.Reason
	case resp.StatusCode == http.StatusPaymentRequired:
		se.Reason = "the wappi profile is not paid: " + se.Reason
	}
	return apiResp{}, se
}

// Send: text via sync/message/send (reply via sync/message/reply), files by URL
// via sync/message/file/url/send (text as the first caption), reactions via
// sync/message/reaction. ExternalIDs use the same keys as webhooks, so echoes
// and delivery statuses match. A send that fails after some parts went out
// returns the ids sent so far with meta.PartialSend's error, which is not
// retried: a retry would send those parts again.
func (a *Adapter) Send(ctx context.Context, cfg channel.Config, out channel.Outgoing) (channel.SendResult, error) {
	c, err := newClient(cfg)
	if err != nil {
		return channel.SendResult{}, err
	}
	net := network(cfg)
	recipient := out.ChatID
	if recipient == "" {
		recipient = out.To
	}
	if recipient == "" {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "no recipient"}
	}
	chat := canonChat(net, recipient)
	key := func(id flexString) string { return extKey(net, c.profile, chat, string(id)) }

	if out.Reaction != nil {
		body := map[string]any{"body": out.Reaction.Emoji, "message_id": rawID(out.Reaction.TargetID)}
		if net != NetWhatsApp {
			body["recipient"] = recipient
		}
		r, err := c.do(ctx, http.MethodPost, "/sync/message/reaction", nil, body)
		if err != nil {
			return channel.SendResult{}, err
		}
		res := channel.SendResult{Status: inbox.MsgSent}
		if r.MessageID != "" {
			res.ExternalID = key(r.MessageID)
			res.ExternalIDs = []string{res.ExternalID}
		}
		return res, nil
	}
	if out.Template != nil {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "wappi has no message templates; send plain text"}
	}
	// Everything is checked before the first part goes out.
	for _, m := range out.Attachments {
		if m.URL == "" {
			return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "attachment has no URL Wappi can fetch"}
		}
	}
	text := out.Text
	caption := ""
	if len(out.Attachments) > 0 && utf8.RuneCountInString(text) <= 1024 {
		caption, text = text, ""
	}
	type part struct {
		path string
		body map[string]any
	}
	var parts []part
	switch {
	case text != "" && out.ReplyToID != "":
		body := map[string]any{"body": text, "message_id": rawID(out.ReplyToID)}
		if net != NetWhatsApp {
			body["recipient"] = recipient
		}
		parts = append(parts, part{"/sync/message/reply", body})
	case text != "":
		body := map[string]any{"recipient": recipient, "body": text}
		if net == NetMax {
			body["chat_id"] = recipient
		}
		parts = append(parts, part{"/sync/message/send", body})
	}
	for i, m := range out.Attachments {
		body := map[string]any{"recipient": recipient, "url": m.URL}
		if m.Filename != "" {
			body["file_name"] = m.Filename
		}
		if i == 0 && caption != "" {
			body["caption"] = caption
		}
		parts = append(parts, part{"/sync/message/file/url/send", body})
	}
	if len(parts) == 0 {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "nothing to send: empty text and no attachments"}
	}
	var ids []string
	result := func() channel.SendResult {
		if len(ids) == 0 {
			return channel.SendResult{Status: inbox.MsgSent}
		}
		return channel.SendResult{ExternalID: ids[0], ExternalIDs: ids, Status: inbox.MsgSent}
	}
	for i, p := range parts {
		r, err := c.do(ctx, http.MethodPost, p.path, nil, p.body)
		if err != nil {
			if i == 0 {
				return channel.SendResult{}, err
			}
			// Parts 1..i are out: a retry would send them again.
			return result(), meta.PartialSend(err)
		}
		id := r.MessageID
		if id == "" {
			id = r.TaskID
		}
		if id != "" {
			ids = append(ids, key(id))
		}
	}
	if len(ids) == 0 {
		return channel.SendResult{}, &channel.SendError{Code: "bad_response", Reason: "wappi answered without a message_id"}
	}
	return result(), nil
}

// FetchMedia downloads a file: a URL ref (file_link) is fetched directly (the
// token only goes to the configured Wappi host); a message id goes through
// {p}/sync/message/media/download, which returns file_b64 or file_link.
func (a *Adapter) FetchMedia(ctx context.Context, cfg channel.Config, ref string) (io.ReadCloser, string, error) {
	if strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://") {
		return fetchURL(ctx, cfg, ref, "")
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, "", err
	}
	r, err := c.do(ctx, http.MethodGet, "/sync/message/media/download", url.Values{"message_id": {rawID(ref)}}, nil)
	if err != nil {
		return nil, "", err
	}
	mime := firstOf(r.MimeType, r.MimeType2)
	if r.FileB64 != "" {
		b64 := r.FileB64
		if i := strings.Index(b64, ";base64,"); i >= 0 && strings.HasPrefix(b64, "data:") {
			if mime == "" {
				mime = b64[5:i]
			}
			b64 = b64[i+8:]
		}
		data, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, "", &channel.SendError{Code: "bad_response", Reason: "wappi file_b64 is not base64"}
		}
		if mime == "" {
			mime = http.DetectContentType(data)
		}
		return io.NopCloser(bytes.NewReader(data)), mime, nil
	}
	if r.FileLink != "" {
		return fetchURL(ctx, cfg, r.FileLink, mime)
	}
	return nil, "", &channel.SendError{Code: "not_found", Reason: "wappi returned neither file_b64 nor file_link"}
}

func fetchURL(ctx context.Context, cfg channel.Config, ref, mime string) (io.ReadCloser, string, error) {
	u, err := url.Parse(ref)
	if err != nil || u.Host == "" {
		return nil, "", inbox.Errorf(inbox.Invalid, "wappi media reference is not a URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref, nil)
	if err != nil {
		return nil, "", err
	}
	if b, err := url.Parse(cfg.BaseURL(DefaultBaseURL)); err == nil && strings.EqualFold(b.Host, u.Host) {
		req.Header.Set("Authorization", cfg.Secret("api_token"))
	}
	resp, err := cfg.Client().Do(req)
	if err != nil {
		return nil, "", netErr(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, "", &channel.SendError{Code: strconv.Itoa(resp.StatusCode), HTTPStatus: resp.StatusCode, Retryable: resp.StatusCode >= 500,
			Reason: fmt.Sprintf("wappi file download answered HTTP %d", resp.StatusCode)}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/octet-stream") {
		mime = ct
	}
	if mime == "" {
		mime = "application/octet-stream"
	}
	return resp.Body, mime, nil
}

// AuthorizationQR asks Wappi for the login QR code of the profile:
// WhatsApp/MAX GET {p}/sync/qr/get (qrCode: a data URL), Telegram GET
// /tapi/sync/auth/qr (base64 PNG in detail, or "2fa"). It returns a
// data:image/png;base64 URL and the state ("pending"; "authorized" with no QR
// when the profile is already logged in; "2fa" when Telegram wants the cloud password).
func (a *Adapter) AuthorizationQR(ctx context.Context, cfg channel.Config) (pngOrDataURL string, state string, err error) {
	c, err := newClient(cfg)
	if err != nil {
		return "", "", err
	}
	path := "/sync/qr/get"
	if network(cfg) == NetTelegram {
		path = "/sync/auth/qr"
	}
	r, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		var se *channel.SendError
		if errors.As(err, &se) && strings.Contains(strings.ToLower(se.Reason), "already authorized") {
			return "", "authorized", nil
		}
		return "", "", err
	}
	img := r.QRCode
	for _, alt := range []string{r.QRCode2, r.QR, r.Base64, string(r.Detail)} {
		if img == "" {
			img = alt
		}
	}
	switch strings.ToLower(img) {
	case "":
		return "", "", &channel.SendError{Code: "bad_response", Reason: "wappi returned no QR code"}
	case "2fa":
		return "", "2fa", nil
	case "already authorized", "authorized":
		return "", "authorized", nil
	}
	if !strings.HasPrefix(img, "data:") {
		img = "data:image/png;base64," + img
	}
	return img, "pending", nil
}

// ProfileStatus reads {p}/sync/get/status: authorized|unauthorized|pending.
func (a *Adapter) ProfileStatus(ctx context.Context, cfg channel.Config) (string, error) {
	c, err := newClient(cfg)
	if err != nil {
		return "", err
	}
	r, err := c.do(ctx, http.MethodGet, "/sync/get/status", nil, nil)
	if err != nil {
		return "", err
	}
	if r.Authorized != "" {
		if AuthStateOf(string(r.Authorized)) == "authorized" {
			return "authorized", nil
		}
		if s := AuthStateOf(string(r.AppStatus)); s == "pending" {
			return s, nil
		}
		return "unauthorized", nil
	}
	return AuthStateOf(string(r.AppStatus)), nil
}

// SetWebhook points the profile's webhooks at url, with auth as the
// Authorization value Wappi will send: POST {p}/webhook/url/set?url=&auth=.
func (a *Adapter) SetWebhook(ctx context.Context, cfg channel.Config, webhookURL, auth string) error {
	c, err := newClient(cfg)
	if err != nil {
		return err
	}
	q := url.Values{"url": {webhookURL}}
	if auth != "" {
		q.Set("auth", auth)
	}
	_, err = c.do(ctx, http.MethodPost, "/webhook/url/set", q, nil)
	return err
}

// GroupInfo finds group titles, which Wappi webhooks do not carry, in the
// profile's chat list: GET {p}/sync/chats/get?limit=&offset=&show_all=true,
// page by page until every wanted chat is found (at most groupPages pages).
// The answer's shape, {"dialogs":[{"id","name"|"title", "group":{"Name"|
// "Subject"}}],"total_count"}, is ASSUMED from open-source integrations.
func (a *Adapter) GroupInfo(ctx context.Context, cfg channel.Config, chatIDs []string) ([]channel.Event, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	net := network(cfg)
	want := map[string]bool{}
	for _, id := range chatIDs {
		want[id] = true
	}
	var out []channel.Event
	for page := 0; page < groupPages && len(want) > 0; page++ {
		r, err := c.do(ctx, http.MethodGet, "/sync/chats/get", url.Values{
			"limit": {strconv.Itoa(groupPageSize)}, "offset": {strconv.Itoa(page * groupPageSize)}, "show_all": {"true"}}, nil)
		if err != nil {
			return out, err
		}
		var d struct {
			Dialogs []struct {
				ID    flexString `json:"id"`
				Name  string     `json:"name"`
				Title string     `json:"title"`
				Group *struct {
					Name    string `json:"Name"`
					Subject string `json:"Subject"`
				} `json:"group"`
				Thumbnail string `json:"thumbnail"`
			} `json:"dialogs"`
		}
		if err := json.Unmarshal(r.Raw, &d); err != nil {
			return out, &channel.SendError{Code: "bad_response", Reason: "unexpected wappi chat list: " + err.Error()}
		}
		for _, dl := range d.Dialogs {
			id := canonChat(net, string(dl.ID))
			if !want[id] {
				continue
			}
			title := firstNonEmpty(dl.Name, dl.Title)
			if dl.Group != nil {
				title = firstNonEmpty(title, dl.Group.Name, dl.Group.Subject)
			}
			if title == "" {
				continue
			}
			delete(want, id)
			out = append(out, channel.Event{Type: channel.EventGroupInfo, ChatID: id, IsGroup: true, GroupTitle: strings.TrimSpace(title), GroupAvatar: dl.Thumbnail})
		}
		if len(d.Dialogs) < groupPageSize {
			break
		}
	}
	return out, nil
}

// The chat list is read groupPageSize chats at a time, at most groupPages pages.
const (
	groupPageSize = 100
	groupPages    = 10
)

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}
