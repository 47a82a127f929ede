package providersim

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/providersim/metasim"
	"github.com/parleyhq/parley/internal/providersim/telegramsim"
	"github.com/parleyhq/parley/internal/providersim/twiliosim"
	"github.com/parleyhq/parley/internal/providersim/wappisim"
	"github.com/parleyhq/parley/internal/providersim/webhook"
)

// headersFor returns the headers the provider of ch sends with body to
// target, signed the provider's way.
func headersFor(ch *RegisteredChannel, target string, body []byte) (http.Header, error) {
	switch ch.Kind {
	case KindWhatsApp, KindMessenger, KindInstagram:
		return metasim.Headers(ch.Secrets["app_secret"], body), nil
	case KindTelegram:
		return telegramsim.Headers(ch.Secrets["webhook_secret"]), nil
	case KindTwilio:
		params, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("providersim: twilio body is not a form: %w", err)
		}
		return twiliosim.Headers(ch.Secrets["auth_token"], target, params), nil
	case KindWappi:
		return wappisim.Headers(ch.Secrets["webhook_auth"]), nil
	case KindAPI:
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set("X-Parley-Signature", signAPI(ch.Secrets["hmac_secret"], body))
		return h, nil
	}
	return nil, fmt.Errorf("providersim: unsupported kind %q", ch.Kind)
}

// post delivers body to target with hdr, retrying network errors and
// non-2xx answers with backoff. It returns the attempts made. 4xx answers
// other than 408/429 will not heal by retrying, but the real providers retry
// anyway (Meta for days); keep retrying to the cap.
func (s *Server) post(ctx context.Context, target string, hdr http.Header, body []byte) (int, error) {
	n, err := webhook.Post(ctx, s.opts.Client, target, hdr, body,
		webhook.Retry{MaxAttempts: s.opts.MaxAttempts, Backoff: s.opts.Backoff, MaxBackoff: 5 * time.Second})
	return max(n, 1), err // a request that could not be built counts as one attempt
}

// Deliver posts one inbound webhook body to channel id's webhook URL, signed
// as its provider signs (Twilio bodies are form-encoded). Attempts beyond the
// first are counted as retries.
func (s *Server) Deliver(ctx context.Context, channelID string, body []byte) error {
	return s.deliver(ctx, channelID, "", body, false)
}

func (s *Server) deliver(ctx context.Context, channelID, target string, body []byte, status bool) error {
	s.mu.Lock()
	reg, ok := s.channels[channelID]
	var ch *RegisteredChannel
	if ok {
		c := *reg
		c.Secrets = maps.Clone(reg.Secrets)
		ch = &c
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("providersim: unknown channel %s", channelID)
	}
	if ch.Kind == KindWappi {
		// Parley may have pointed the profile elsewhere with /webhook/url/set.
		if ws := s.Wappi(ch.Secrets["api_token"]); ws != nil {
			if p, ok := ws.Profile(ch.str("profile_id")); ok && p.WebhookURL != "" {
				if target == "" {
					target = p.WebhookURL
				}
				ch.Secrets["webhook_auth"] = p.WebhookAuth
			}
		}
	}
	if target == "" {
		target = ch.WebhookURL
	}
	if target == "" {
		return fmt.Errorf("providersim: channel %s has no webhook URL", channelID)
	}
	hdr, err := headersFor(ch, target, body)
	if err != nil {
		return err
	}
	n, err := s.post(ctx, target, hdr, body)
	s.count(channelID, func(st *ChannelStats) {
		st.Retries += n - 1
		switch {
		case status && err == nil:
			st.Statuses++
		case status:
			st.StatusesFailed++
		case err == nil:
			st.Inbound++
		default:
			st.InboundFailed++
		}
	})
	if err != nil {
		s.log.Warn("providersim: webhook delivery failed", "channel", channelID, "kind", ch.Kind, "attempts", n, "err", err)
	}
	return err
}

// statusSequence delivers bodies one after another, StatusDelay apart, in
// the background (stops at the first failure or on Close).
func (s *Server) statusSequence(channelID, target string, bodies ...func() []byte) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for _, b := range bodies {
			t := time.NewTimer(s.opts.StatusDelay)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if err := s.deliver(s.ctx, channelID, target, b(), true); err != nil {
				return
			}
		}
	}()
}

func (s *Server) findChannel(match func(c *RegisteredChannel) bool) *RegisteredChannel {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.channels {
		if match(c) {
			return c
		}
	}
	return nil
}

func bearer(r *http.Request) string {
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return r.URL.Query().Get("access_token")
}

// afterMetaSend answers a successful Graph send like Meta: WhatsApp status
// webhooks sent → delivered → read; Messenger delivery then read
// (watermark); Instagram messaging_seen.
func (s *Server) afterMetaSend(r *http.Request, reqBody []byte, _ int, answer []byte) {
	m := metaSend.FindStringSubmatch(r.URL.Path)
	if m == nil || r.Method != http.MethodPost {
		return
	}
	node, tok := m[1], bearer(r)
	var req map[string]any
	_ = json.Unmarshal(reqBody, &req)
	var ans struct {
		MessageID   string `json:"message_id"`
		RecipientID string `json:"recipient_id"`
		Messages    []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
	if json.Unmarshal(answer, &ans) != nil {
		return
	}
	ch := s.findChannel(func(c *RegisteredChannel) bool {
		switch c.Kind {
		case KindWhatsApp:
			return c.str("phone_number_id") == node && c.Secrets["access_token"] == tok
		case KindMessenger:
			return (node == "me" || c.str("page_id") == node) && c.Secrets["page_access_token"] == tok
		case KindInstagram:
			return (node == "me" || c.str("account_id") == node || c.str("page_id") == node) && c.Secrets["access_token"] == tok
		}
		return false
	})
	if ch == nil {
		return
	}
	s.count(ch.ID, func(st *ChannelStats) { st.Sends++ })
	switch ch.Kind {
	case KindWhatsApp:
		if len(ans.Messages) == 0 || req["type"] == "reaction" {
			return
		}
		id := ans.Messages[0].ID
		to, _ := req["to"].(string)
		if to == "" {
			to, _ = req["recipient"].(string)
		}
		step := func(status string) func() []byte {
			return func() []byte {
				return metasim.WhatsAppPayload(metasim.WAEntry{WABAID: ch.str("waba_id"), Values: []metasim.WAValue{{
					PhoneNumberID: ch.str("phone_number_id"), DisplayPhone: ch.OwnID,
					Statuses: []metasim.M{metasim.WAStatus(id, status, to, time.Now().Unix(), 0, "", "")},
				}}})
			}
		}
		s.statusSequence(ch.ID, "", step("sent"), step("delivered"), step("read"))
	case KindMessenger:
		if ans.MessageID == "" {
			return
		}
		page, user, mid := ch.str("page_id"), ans.RecipientID, ans.MessageID
		s.statusSequence(ch.ID, "",
			func() []byte {
				now := time.Now().UnixMilli()
				return metasim.MessagingPayload("page", metasim.MEntry{ID: page, Time: now,
					Messaging: []metasim.M{metasim.MDelivery(user, page, now, now, mid)}})
			},
			func() []byte {
				now := time.Now().UnixMilli()
				return metasim.MessagingPayload("page", metasim.MEntry{ID: page, Time: now,
					Messaging: []metasim.M{metasim.MRead(user, page, now, now)}})
			})
	case KindInstagram:
		if ans.MessageID == "" {
			return
		}
		acct, user, mid := ch.str("account_id"), ans.RecipientID, ans.MessageID
		s.statusSequence(ch.ID, "", func() []byte {
			now := time.Now().UnixMilli()
			return metasim.MessagingPayload("instagram", metasim.MEntry{ID: acct, Time: now,
				Messaging: []metasim.M{metasim.MSeen(user, acct, now, mid)}})
		})
	}
}

// afterTwilioSend posts status callbacks (sent, delivered) to the
// StatusCallback of the send, signed with the account's auth token.
func (s *Server) afterTwilioSend(r *http.Request, reqBody []byte, status int, answer []byte) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/Messages.json") || status != http.StatusCreated {
		return
	}
	form, _ := url.ParseQuery(string(reqBody))
	var ans struct {
		Sid        string `json:"sid"`
		AccountSid string `json:"account_sid"`
		From       string `json:"from"`
		To         string `json:"to"`
	}
	if json.Unmarshal(answer, &ans) != nil || ans.Sid == "" {
		return
	}
	ch := s.findChannel(func(c *RegisteredChannel) bool {
		return c.Kind == KindTwilio && c.str("account_sid") == ans.AccountSid &&
			(c.str("phone_number") == ans.From || ans.From == "")
	})
	if ch == nil {
		return
	}
	s.count(ch.ID, func(st *ChannelStats) { st.Sends++ })
	cb := form.Get("StatusCallback")
	if cb == "" {
		return
	}
	step := func(st string) func() []byte {
		return func() []byte {
			return []byte(twiliosim.StatusParams(ans.AccountSid, ans.Sid, ans.From, ans.To, st, "").Encode())
		}
	}
	s.statusSequence(ch.ID, cb, step("sent"), step("delivered"))
}

// afterWappiSend posts delivery_status webhooks (delivered, read) for a
// successful send/reply/file send, to the webhook set on the profile.
func (s *Server) afterWappiSend(r *http.Request, reqBody []byte, _ int, answer []byte) {
	path := r.URL.Path
	if r.Method != http.MethodPost || !strings.Contains(path, "/sync/message/") {
		return
	}
	isReply := strings.HasSuffix(path, "/sync/message/reply")
	if !isReply && !strings.HasSuffix(path, "/sync/message/send") && !strings.HasSuffix(path, "/sync/message/file/url/send") &&
		!strings.HasSuffix(path, "/sync/message/reaction") {
		return
	}
	var ans struct {
		Status    string          `json:"status"`
		MessageID json.RawMessage `json:"message_id"`
	}
	if json.Unmarshal(answer, &ans) != nil || ans.Status != "done" {
		return
	}
	msgID := strings.Trim(string(ans.MessageID), `"`) // a string (WhatsApp) or a number (Telegram, MAX)
	if msgID == "" || msgID == "null" {
		return
	}
	pid := r.URL.Query().Get("profile_id")
	ch := s.findChannel(func(c *RegisteredChannel) bool { return c.Kind == KindWappi && c.str("profile_id") == pid })
	if ch == nil {
		return
	}
	s.count(ch.ID, func(st *ChannelStats) { st.Sends++ })
	if strings.HasSuffix(path, "/sync/message/reaction") {
		return
	}
	var body map[string]any
	_ = json.Unmarshal(reqBody, &body)
	chat := fmt.Sprint(body["recipient"])
	if body["recipient"] == nil {
		chat = ""
	}
	if chat == "" && isReply {
		s.mu.Lock()
		chat = s.wappiChat[pid+":"+fmt.Sprint(body["message_id"])]
		s.mu.Unlock()
	}
	net := ch.str("network")
	if (net == "" || net == "whatsapp") && chat != "" && !strings.Contains(chat, "@") {
		chat += "@c.us"
	}
	s.rememberWappiChat(pid, msgID, chat)
	step := func(st string) func() []byte {
		return func() []byte { return wappisim.DeliveryStatus(pid, msgID, chat, st) }
	}
	s.statusSequence(ch.ID, "", step("delivered"), step("read"))
}
