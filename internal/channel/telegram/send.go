package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/meta"
	"github.com/parleyhq/parley/internal/inbox"
)

type apiResponse struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  *struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient(cfg channel.Config) (*client, error) {
	token := cfg.Secret("bot_token")
	if token == "" {
		return nil, &channel.SendError{Code: "config", Reason: "telegram bot_token is not configured"}
	}
	return &client{base: strings.TrimRight(cfg.BaseURL(DefaultBaseURL), "/"), token: token, http: cfg.Client()}, nil
}

// scrub removes the bot token from any text that may reach logs or users.
func (c *client) scrub(s string) string {
	if c.token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.token, "<bot-token>")
}

// netErr turns a transport error into a retryable SendError without the URL (which holds the token).
func (c *client) netErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &channel.SendError{Retryable: true, Code: "network", Reason: c.scrub(err.Error())}
}

// call POSTs a JSON body to a Bot API method and decodes result into out.
func (c *client) call(ctx context.Context, method string, params any, out any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/bot"+c.token+"/"+method, bytes.NewReader(body))
	if err != nil {
		return &channel.SendError{Code: "config", Reason: c.scrub(err.Error())}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return c.netErr(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return c.netErr(err)
	}
	var r apiResponse
	jsonErr := json.Unmarshal(data, &r)
	if resp.StatusCode/100 == 2 && jsonErr == nil && r.OK {
		if out != nil && len(r.Result) > 0 {
			if err := json.Unmarshal(r.Result, out); err != nil {
				return &channel.SendError{Code: "bad_response", Reason: "unexpected telegram result: " + err.Error(), HTTPStatus: resp.StatusCode}
			}
		}
		return nil
	}
	return c.mapError(resp, r, jsonErr)
}

func (c *client) mapError(resp *http.Response, r apiResponse, jsonErr error) error {
	status := resp.StatusCode
	code := r.ErrorCode
	if code == 0 {
		code = status
	}
	se := &channel.SendError{Code: strconv.Itoa(code), HTTPStatus: status, Reason: c.scrub(r.Description)}
	if jsonErr != nil || se.Reason == "" {
		se.Reason = fmt.Sprintf("telegram answered HTTP %d", status)
	}
	switch {
	case code == http.StatusTooManyRequests || status == http.StatusTooManyRequests:
		se.Retryable = true
		if r.Parameters != nil && r.Parameters.RetryAfter > 0 {
			se.RetryAfter = time.Duration(r.Parameters.RetryAfter) * time.Second
		} else if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.RetryAfter = time.Duration(s) * time.Second
		}
	case code == http.StatusForbidden:
		se.Reason = "the bot cannot write to this chat (the user blocked the bot, never started it, or the bot was removed): " + se.Reason
	case code == http.StatusUnauthorized:
		se.Reason = "the bot token was rejected by Telegram: " + se.Reason
	case code == http.StatusBadRequest && r.Parameters != nil && r.Parameters.MigrateToChatID != 0:
		se.Reason = fmt.Sprintf("the group was upgraded to a supergroup with id %d: %s", r.Parameters.MigrateToChatID, se.Reason)
	case status >= 500 || code >= 500:
		se.Retryable = true
	}
	return se
}

type sentMessage struct {
	MessageID int64 `json:"message_id"`
	Chat      struct {
		ID int64 `json:"id"`
	} `json:"chat"`
}

// splitTarget turns "<chat.id>:<message_id>" into the message id.
func splitTarget(ext string) (int64, bool) {
	i := strings.LastIndexByte(ext, ':')
	n, err := strconv.ParseInt(ext[i+1:], 10, 64)
	return n, err == nil && n > 0
}

// chatIDParam sends numeric ids as numbers and "@channelusername" as strings.
func chatIDParam(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	return s
}

// Send delivers text (split into ≤4096-unit parts), media by URL (sendPhoto…;
// captions ≤1024, longer text goes as separate messages first) or a reaction.
// A send that fails after some parts went out returns the ids sent so far
// with meta.PartialSend's error, which is not retried: a retry would send
// those parts again.
func (a *Adapter) Send(ctx context.Context, cfg channel.Config, out channel.Outgoing) (channel.SendResult, error) {
	c, err := newClient(cfg)
	if err != nil {
		return channel.SendResult{}, err
	}
	chatStr := out.ChatID
	if chatStr == "" {
		chatStr = out.To
	}
	if chatStr == "" {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "no telegram chat id to send to"}
	}
	chatID := chatIDParam(chatStr)

	if out.Reaction != nil {
		mid, ok := splitTarget(out.Reaction.TargetID)
		if !ok {
			return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "reaction target is not a telegram message id"}
		}
		reaction := []map[string]string{}
		if out.Reaction.Emoji != "" {
			reaction = append(reaction, map[string]string{"type": "emoji", "emoji": out.Reaction.Emoji})
		}
		err := c.call(ctx, "setMessageReaction", map[string]any{"chat_id": chatID, "message_id": mid, "reaction": reaction}, nil)
		if err != nil {
			return channel.SendResult{}, err
		}
		return channel.SendResult{Status: inbox.MsgSent}, nil
	}
	if out.Template != nil {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "telegram has no message templates; send plain text"}
	}

	var reply map[string]any
	if out.ReplyToID != "" {
		if mid, ok := splitTarget(out.ReplyToID); ok {
			reply = map[string]any{"message_id": mid, "allow_sending_without_reply": true}
		}
	}
	var ids []string
	send := func(method string, params map[string]any) error {
		params["chat_id"] = chatID
		if reply != nil {
			params["reply_parameters"] = reply
			reply = nil // only the first part quotes
		}
		var m sentMessage
		if err := c.call(ctx, method, params, &m); err != nil {
			return err
		}
		chat := m.Chat.ID
		if chat == 0 {
			chat, _ = strconv.ParseInt(chatStr, 10, 64)
		}
		ids = append(ids, msgKey(chat, m.MessageID))
		return nil
	}

	// Everything is checked before the first part goes out.
	for _, m := range out.Attachments {
		if m.URL == "" {
			return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "attachment has no URL Telegram can fetch"}
		}
	}
	text := out.Text
	caption := ""
	if len(out.Attachments) > 0 && channel.TextLen(text, "utf16") <= MaxCaptionLen {
		caption, text = text, ""
	}
	type part struct {
		method string
		params map[string]any
	}
	var parts []part
	for _, t := range SplitText(text, MaxTextLen) {
		parts = append(parts, part{"sendMessage", map[string]any{"text": t}})
	}
	for i, m := range out.Attachments {
		method, field := mediaMethod(m)
		params := map[string]any{field: m.URL}
		if i == 0 && caption != "" {
			params["caption"] = caption
		}
		parts = append(parts, part{method, params})
	}
	if len(parts) == 0 {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "nothing to send: empty text and no attachments"}
	}
	for i, p := range parts {
		if err := send(p.method, p.params); err != nil {
			if i == 0 {
				return channel.SendResult{}, err
			}
			return channel.SendResult{ExternalID: ids[0], ExternalIDs: ids, Status: inbox.MsgSent}, meta.PartialSend(err)
		}
	}
	return channel.SendResult{ExternalID: ids[0], ExternalIDs: ids, Status: inbox.MsgSent}, nil
}

func mediaMethod(m channel.OutMedia) (method, field string) {
	kind := m.Kind
	if kind == "" {
		switch {
		case strings.HasPrefix(m.MimeType, "image/"):
			kind = inbox.KindImage
		case strings.HasPrefix(m.MimeType, "video/"):
			kind = inbox.KindVideo
		case strings.HasPrefix(m.MimeType, "audio/"):
			kind = inbox.KindAudio
		}
	}
	switch kind {
	case inbox.KindImage:
		if m.MimeType == "image/gif" {
			return "sendAnimation", "animation"
		}
		return "sendPhoto", "photo"
	case inbox.KindVideo:
		return "sendVideo", "video"
	case inbox.KindVoice:
		return "sendVoice", "voice"
	case inbox.KindAudio:
		return "sendAudio", "audio"
	case inbox.KindSticker:
		return "sendSticker", "sticker"
	}
	return "sendDocument", "document"
}

// SplitText cuts s into parts of at most max UTF-16 code units, never inside a
// rune, preferring a line break, then a space, in the last fifth of a part.
// Empty text gives no parts.
func SplitText(s string, max int) []string {
	if s == "" {
		return nil
	}
	var parts []string
	for s != "" {
		if channel.TextLen(s, "utf16") <= max {
			parts = append(parts, s)
			break
		}
		// cut = byte offset of the longest prefix within max units.
		cut, units := 0, 0
		for i, r := range s {
			w := utf16.RuneLen(r) // ranging over a string never yields an invalid rune
			if units+w > max {
				break
			}
			units += w
			cut = i + utf8.RuneLen(r)
			if r == utf8.RuneError {
				_, size := utf8.DecodeRuneInString(s[i:])
				cut = i + size
			}
		}
		if cut == 0 { // max < 2 and a surrogate pair: take one rune anyway
			_, size := utf8.DecodeRuneInString(s)
			cut = size
		}
		best := cut
		floor := cut * 4 / 5
		if i := strings.LastIndexByte(s[:cut], '\n'); i >= floor && i > 0 {
			best = i + 1
		} else if i := strings.LastIndexByte(s[:cut], ' '); i >= floor && i > 0 {
			best = i + 1
		}
		parts = append(parts, s[:best])
		s = s[best:]
	}
	return parts
}

// Answer answers a callback query (a pressed inline button): Telegram
// clients show a progress indicator on the button until it is answered.
func (a *Adapter) Answer(ctx context.Context, cfg channel.Config, ev channel.Event) error {
	if ev.QueryID == "" {
		return nil
	}
	c, err := newClient(cfg)
	if err != nil {
		return err
	}
	return c.call(ctx, "answerCallbackQuery", map[string]any{"callback_query_id": ev.QueryID}, nil)
}

// FetchMedia resolves a file_id with getFile and downloads it. Errors never contain the token.
func (a *Adapter) FetchMedia(ctx context.Context, cfg channel.Config, ref string) (io.ReadCloser, string, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, "", err
	}
	var f struct {
		FileID   string `json:"file_id"`
		FileSize int64  `json:"file_size"`
		FilePath string `json:"file_path"`
	}
	if err := c.call(ctx, "getFile", map[string]string{"file_id": ref}, &f); err != nil {
		return nil, "", err
	}
	if f.FilePath == "" {
		return nil, "", &channel.SendError{Code: "not_found", Reason: "telegram returned no file_path (file larger than 20 MB?)"}
	}
	u := c.base + "/file/bot" + c.token + "/" + strings.TrimLeft(f.FilePath, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", errors.New(c.scrub(err.Error()))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, "", c.netErr(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, "", &channel.SendError{Code: strconv.Itoa(resp.StatusCode), HTTPStatus: resp.StatusCode,
			Retryable: resp.StatusCode >= 500, Reason: fmt.Sprintf("telegram file download answered HTTP %d", resp.StatusCode)}
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" || strings.HasPrefix(ct, "application/octet-stream") {
		if t := mime.TypeByExtension(path.Ext(f.FilePath)); t != "" {
			ct = t
		} else if strings.HasSuffix(f.FilePath, ".oga") {
			ct = "audio/ogg"
		}
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	return resp.Body, ct, nil
}
