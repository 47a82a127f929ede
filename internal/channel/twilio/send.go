package twilio

import (
	"context"
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
	"github.com/parleyhq/parley/internal/inbox"
)

type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func netErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &channel.SendError{Retryable: true, Code: "network", Reason: err.Error()}
}

// SendsReactions reports that SMS and MMS cannot carry reactions: the API
// refuses an operator's reaction on an SMS conversation before storing it.
func (*Adapter) SendsReactions(channel.Config) bool { return false }

// Send posts To/From/Body/MediaUrl/StatusCallback to Messages.json with Basic auth.
func (a *Adapter) Send(ctx context.Context, cfg channel.Config, out channel.Outgoing) (channel.SendResult, error) {
	sid, token := cfg.String("account_sid"), cfg.Secret("auth_token")
	if sid == "" || token == "" {
		return channel.SendResult{}, &channel.SendError{Code: "config", Reason: "twilio account_sid or auth_token is not configured"}
	}
	if out.Reaction != nil {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "SMS cannot carry reactions"}
	}
	if out.Template != nil {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "SMS has no templates; send plain text"}
	}
	if n := utf8.RuneCountInString(out.Text); n > MaxBodyLen {
		return channel.SendResult{}, &channel.SendError{Code: "21617", Reason: fmt.Sprintf("SMS text is %d characters; the limit is %d", n, MaxBodyLen)}
	}
	if len(out.Attachments) > 0 && !mms(cfg) {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "this number is configured for SMS only (mms is off): send text, or enable mms for an MMS-capable number"}
	}
	if len(out.Attachments) > MaxMediaURLs {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: fmt.Sprintf("MMS carries at most %d files", MaxMediaURLs)}
	}
	if strings.TrimSpace(out.Text) == "" && len(out.Attachments) == 0 {
		return channel.SendResult{}, &channel.SendError{Code: "21602", Reason: "message body is required"}
	}
	form := url.Values{}
	form.Set("To", out.To)
	if svc := cfg.String("messaging_service_sid"); svc != "" {
		form.Set("MessagingServiceSid", svc)
	} else {
		form.Set("From", cfg.String("phone_number"))
	}
	if out.Text != "" {
		form.Set("Body", out.Text)
	}
	for _, m := range out.Attachments {
		if m.URL == "" {
			return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "attachment has no URL Twilio can fetch"}
		}
		form.Add("MediaUrl", m.URL)
	}
	if cfg.WebhookURL != "" {
		form.Set("StatusCallback", cfg.WebhookURL)
	}
	base := strings.TrimRight(cfg.BaseURL(DefaultBaseURL), "/")
	endpoint := base + "/2010-04-01/Accounts/" + url.PathEscape(sid) + "/Messages.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return channel.SendResult{}, &channel.SendError{Code: "config", Reason: err.Error()}
	}
	req.SetBasicAuth(sid, token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := cfg.Client().Do(req)
	if err != nil {
		return channel.SendResult{}, netErr(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return channel.SendResult{}, netErr(err)
	}
	if resp.StatusCode/100 == 2 {
		var m struct {
			Sid    string `json:"sid"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(data, &m); err != nil || m.Sid == "" {
			return channel.SendResult{}, &channel.SendError{Code: "bad_response", HTTPStatus: resp.StatusCode, Reason: "twilio answered without a message sid"}
		}
		st := inbox.MsgSent
		if m.Status == "failed" || m.Status == "undelivered" {
			st = inbox.MsgFailed
		}
		return channel.SendResult{ExternalID: m.Sid, ExternalIDs: []string{m.Sid}, Status: st}, nil
	}
	return channel.SendResult{}, mapError(resp, data)
}

func mapError(resp *http.Response, data []byte) error {
	var e apiError
	_ = json.Unmarshal(data, &e)
	se := &channel.SendError{HTTPStatus: resp.StatusCode, Code: strconv.Itoa(resp.StatusCode)}
	if e.Code != 0 {
		se.Code = strconv.Itoa(e.Code)
	}
	se.Reason = e.Message
	if se.Reason == "" {
		se.Reason = fmt.Sprintf("twilio answered HTTP %d", resp.StatusCode)
	}
	if e.MoreInfo != "" {
		se.Reason += " (" + e.MoreInfo + ")"
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || e.Code == 20429:
		se.Retryable = true
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.RetryAfter = time.Duration(s) * time.Second
		}
	case resp.StatusCode >= 500:
		se.Retryable = true
	case resp.StatusCode == http.StatusUnauthorized:
		se.Reason = "twilio rejected the account SID / auth token: " + se.Reason
	}
	return se
}

// FetchMedia downloads a MediaUrl with Basic auth, following redirects (the
// credentials are only sent to Twilio's own host or the configured base).
func (a *Adapter) FetchMedia(ctx context.Context, cfg channel.Config, ref string) (io.ReadCloser, string, error) {
	u, err := url.Parse(ref)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, "", inbox.Errorf(inbox.Invalid, "twilio media reference is not a URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref, nil)
	if err != nil {
		return nil, "", err
	}
	if trustedHost(cfg, u.Host) {
		req.SetBasicAuth(cfg.String("account_sid"), cfg.Secret("auth_token"))
	}
	resp, err := cfg.Client().Do(req) // net/http follows redirects and drops Authorization on other hosts
	if err != nil {
		return nil, "", netErr(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, "", &channel.SendError{Code: strconv.Itoa(resp.StatusCode), HTTPStatus: resp.StatusCode,
			Retryable: resp.StatusCode >= 500, Reason: fmt.Sprintf("twilio media download answered HTTP %d", resp.StatusCode)}
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	return resp.Body, ct, nil
}

func trustedHost(cfg channel.Config, host string) bool {
	h := strings.ToLower(host)
	if h == "api.twilio.com" || strings.HasSuffix(h, ".twilio.com") {
		return true
	}
	if b, err := url.Parse(cfg.BaseURL(DefaultBaseURL)); err == nil && strings.EqualFold(b.Host, host) {
		return true
	}
	return false
}
