package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/channel"
)

// maxResponse caps how much of a Graph API answer is read.
const maxResponse = 1 << 20

// GraphError is the "error" object of a Graph API answer.
type GraphError struct {
	Message      string          `json:"message"`
	Type         string          `json:"type"`
	Code         Num             `json:"code"`
	Subcode      Num             `json:"error_subcode"`
	IsTransient  bool            `json:"is_transient"`
	UserTitle    string          `json:"error_user_title"`
	UserMsg      string          `json:"error_user_msg"`
	FBTraceID    string          `json:"fbtrace_id"`
	ErrorDataRaw json.RawMessage `json:"error_data"`
}

// details extracts error_data.details (WhatsApp) whether error_data is an
// object or a string.
func (g GraphError) details() string {
	raw := bytes.TrimSpace(g.ErrorDataRaw)
	if len(raw) == 0 {
		return ""
	}
	var obj struct {
		Details string `json:"details"`
	}
	if raw[0] == '{' && json.Unmarshal(raw, &obj) == nil {
		return obj.Details
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// retryableCodes are Graph/WhatsApp error codes worth retrying: transient
// server errors and throttling.
var retryableCodes = map[int64]bool{
	1:      true, // unknown error, retry
	2:      true, // service temporarily unavailable
	4:      true, // application request limit
	17:     true, // user request limit
	32:     true, // page request limit
	341:    true, // application limit
	613:    true, // calls exceeded rate limit
	80007:  true, // WhatsApp rate limit
	130429: true, // throughput reached
	131000: true, // something went wrong
	131016: true, // service unavailable
	131048: true, // spam rate limit
	131056: true, // pair rate limit
	133004: true, // server temporarily unavailable
	1200:   true, // Messenger: temporary send failure
}

// ErrorFromResponse maps a non-2xx Graph API answer into a *channel.SendError:
// Code is the Graph code (with subcode as "code/subcode"), Reason the
// provider's wording (message plus error_data.details), Retryable for 5xx,
// 429, is_transient and throttling/transient codes.
func ErrorFromResponse(status int, header http.Header, body []byte) *channel.SendError {
	var env struct {
		Error *GraphError `json:"error"`
	}
	se := &channel.SendError{HTTPStatus: status}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		g := env.Error
		code := g.Code.Int64()
		se.Code = strconv.FormatInt(code, 10)
		if sc := g.Subcode.Int64(); sc != 0 {
			se.Code += "/" + strconv.FormatInt(sc, 10)
		}
		reason := g.Message
		if d := g.details(); d != "" && !strings.Contains(reason, d) {
			if reason != "" {
				reason += ": "
			}
			reason += d
		}
		if reason == "" {
			reason = g.UserMsg
		}
		se.Reason = reason
		se.Retryable = g.IsTransient || retryableCodes[code]
	} else {
		se.Code = strconv.Itoa(status)
		se.Reason = strings.TrimSpace(string(truncate(body, 300)))
		if se.Reason == "" {
			se.Reason = http.StatusText(status)
		}
	}
	if status >= 500 || status == http.StatusTooManyRequests {
		se.Retryable = true
	}
	if ra := header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && secs > 0 {
			se.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	return se
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Client calls the Graph API for one channel.
type Client struct {
	HTTP  *http.Client
	Base  string // e.g. https://graph.facebook.com/v21.0, no trailing slash
	Token string // sent as Authorization: Bearer
}

// NewClient builds a Client from a channel config and the name of its token secret.
func NewClient(cfg channel.Config, tokenSecret string) *Client {
	return &Client{
		HTTP:  cfg.Client(),
		Base:  strings.TrimRight(cfg.BaseURL(DefaultBaseURL), "/"),
		Token: cfg.Secret(tokenSecret),
	}
}

// URL joins path segments onto the base.
func (c *Client) URL(path string) string { return c.Base + "/" + strings.TrimLeft(path, "/") }

// Do sends a JSON request (in may be nil) and decodes a 2xx JSON answer into
// out (may be nil). Non-2xx answers become *channel.SendError; transport
// failures are returned as is (retryable per channel.IsRetryable).
func (c *Client) Do(ctx context.Context, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("meta: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return &channel.SendError{Code: "bad_request", Reason: err.Error()}
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("meta: %s %s: %w", method, redactURL(url), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("meta: read answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return ErrorFromResponse(resp.StatusCode, resp.Header, b)
	}
	// Graph sometimes answers 200 with an error object.
	if bytes.Contains(b, []byte(`"error"`)) {
		var env struct {
			Error *GraphError `json:"error"`
		}
		if json.Unmarshal(b, &env) == nil && env.Error != nil && (env.Error.Message != "" || env.Error.Code.Set) {
			return ErrorFromResponse(http.StatusBadRequest, resp.Header, b)
		}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return &channel.SendError{Code: "bad_response", Reason: "unreadable Graph API answer", HTTPStatus: resp.StatusCode}
		}
	}
	return nil
}

// Download GETs url with the Bearer token and returns the open body and its
// content type. The caller closes the body.
func (c *Client) Download(ctx context.Context, url string) (io.ReadCloser, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("meta: download: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		resp.Body.Close()
		return nil, "", ErrorFromResponse(resp.StatusCode, resp.Header, b)
	}
	return resp.Body, resp.Header.Get("Content-Type"), nil
}

// redactURL drops the query (it may hold access_token) from url for messages.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// IsSendError reports whether err is a *channel.SendError with code.
func IsSendError(err error, code string) bool {
	var se *channel.SendError
	return errors.As(err, &se) && se.Code == code
}
