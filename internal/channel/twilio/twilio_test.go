package twilio

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/providersim/twiliosim"
)

const (
	acct  = "AC0123456789abcdef0123456789abcdef"
	token = "12345678901234567890123456789012"
	own   = "+15550100002"
)

func cfg() channel.Config {
	return channel.Config{Kind: Kind, Config: map[string]any{"account_sid": acct, "phone_number": own},
		Secrets: map[string]string{"auth_token": token}, WebhookURL: "https://inbox.example.com/webhooks/ch1"}
}

// Twilio's documented example: URL, params and the resulting signature.
func TestSignDocumentedExample(t *testing.T) {
	params := map[string][]string{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"},
	}
	got := Sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)
	if got != "0/KCTR6DLpKmkAf8muzZqo1nDgQ=" {
		t.Fatalf("signature %s", got)
	}
	if twiliosim.Sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) != got {
		t.Fatal("simulator signs differently")
	}
}

func TestVerify(t *testing.T) {
	a := New()
	body := "MessageSid=SM1&AccountSid=" + acct + "&From=%2B15550100001&To=%2B15550100002&Body=Hi+there&NumMedia=0&ToCity="
	params, _ := url.ParseQuery(body)
	signed := func(u string) string { return Sign(token, u, params) }
	cases := []struct {
		name     string
		reqURL   string
		signURL  string
		body     string
		ok       bool
		noHeader bool
	}{
		{"exact", "https://inbox.example.com/webhooks/ch1?x=1", "https://inbox.example.com/webhooks/ch1?x=1", body, true, false},
		{"signed with :443, configured without", "https://inbox.example.com/webhooks/ch1", "https://inbox.example.com:443/webhooks/ch1", body, true, false},
		{"signed without port, configured with :443", "https://inbox.example.com:443/webhooks/ch1", "https://inbox.example.com/webhooks/ch1", body, true, false},
		{"http :80", "http://inbox.example.com/webhooks/ch1", "http://inbox.example.com:80/webhooks/ch1", body, true, false},
		{"non-default port must match", "https://inbox.example.com:8443/webhooks/ch1", "https://inbox.example.com/webhooks/ch1", body, false, false},
		{"tampered body", "https://inbox.example.com/webhooks/ch1", "https://inbox.example.com/webhooks/ch1", strings.Replace(body, "Hi+there", "Hi+thera", 1), false, false},
		{"empty value dropped", "https://inbox.example.com/webhooks/ch1", "https://inbox.example.com/webhooks/ch1", strings.Replace(body, "&ToCity=", "", 1), false, false},
		{"other url", "https://inbox.example.com/webhooks/ch2", "https://inbox.example.com/webhooks/ch1", body, false, false},
		{"query differs", "https://inbox.example.com/webhooks/ch1?x=2", "https://inbox.example.com/webhooks/ch1?x=1", body, false, false},
		{"missing header", "https://inbox.example.com/webhooks/ch1", "", body, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			if !c.noHeader {
				h.Set(SignatureHeader, signed(c.signURL))
			}
			err := a.Verify(cfg(), channel.Request{Method: "POST", URL: c.reqURL, Header: h, Body: []byte(c.body)})
			if (err == nil) != c.ok {
				t.Fatalf("ok=%v want %v: %v", err == nil, c.ok, err)
			}
			if err != nil && !inbox.IsCode(err, inbox.Unauthorized) {
				t.Fatal(err)
			}
		})
	}
	// GET: URL only.
	h := http.Header{}
	h.Set(SignatureHeader, Sign(token, "https://inbox.example.com/webhooks/ch1?MessageSid=SM1", nil))
	if err := a.Verify(cfg(), channel.Request{Method: "GET", URL: "https://inbox.example.com/webhooks/ch1?MessageSid=SM1", Header: h}); err != nil {
		t.Fatal(err)
	}
	// Empty Request.URL falls back to the channel's WebhookURL.
	h.Set(SignatureHeader, Sign(token, cfg().WebhookURL, params))
	if err := a.Verify(cfg(), channel.Request{Method: "POST", Header: h, Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
}

func TestURLVariants(t *testing.T) {
	cases := map[string][]string{
		"https://a.example/x?y=1":  {"https://a.example/x?y=1", "https://a.example:443/x?y=1"},
		"https://a.example:443/x":  {"https://a.example:443/x", "https://a.example/x"},
		"http://a.example":         {"http://a.example", "http://a.example:80"},
		"https://u:p@a.example/x":  {"https://u:p@a.example/x", "https://u:p@a.example:443/x"},
		"https://a.example:8443/x": {"https://a.example:8443/x"},
		"https://[::1]/x":          {"https://[::1]/x", "https://[::1]:443/x"},
		"not a url":                {"not a url"},
	}
	for in, want := range cases {
		got := urlVariants(in)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: %v want %v", in, got, want)
		}
	}
}

func TestParseInbound(t *testing.T) {
	a := New()
	body := "ToCountry=US&ToState=CA&SmsMessageSid=SMxxxx&NumMedia=0&SmsSid=SMxxxx&SmsStatus=received&Body=Hi+there+%F0%9F%91%8B&To=%2B15550100002&NumSegments=1&MessageSid=SMxxxx&AccountSid=ACxxxx&From=%2B15550100001&ApiVersion=2010-04-01"
	evs, err := a.Parse(cfg(), channel.Request{Body: []byte(body)})
	if err != nil || len(evs) != 1 {
		t.Fatal(err, evs)
	}
	ev := evs[0]
	if ev.Type != channel.EventMessage || ev.ExternalID != "SMxxxx" || ev.ChatID != "+15550100001" || ev.Sender.Phone != "+15550100001" ||
		ev.Text != "Hi there 👋" || ev.Kind != inbox.KindText || !ev.Timestamp.IsZero() || ev.Direction != "inbound" {
		t.Fatalf("%+v", ev)
	}

	mmsBody := "MessageSid=MMabc&From=%2B15550100001&To=%2B15550100002&Body=&NumMedia=2" +
		"&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC1%2FMessages%2FMMabc%2FMedia%2FME1&MediaContentType0=image%2Fjpeg" +
		"&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC1%2FMessages%2FMMabc%2FMedia%2FME2&MediaContentType1=application%2Fpdf"
	evs, _ = a.Parse(cfg(), channel.Request{Body: []byte(mmsBody)})
	ev = evs[0]
	if ev.Kind != inbox.KindImage || len(ev.Attachments) != 2 || ev.Attachments[0].ProviderRef != "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MMabc/Media/ME1" ||
		ev.Attachments[1].Kind != inbox.KindDocument || ev.Attachments[0].MimeType != "image/jpeg" {
		t.Fatalf("%+v", ev)
	}
}

func TestParseStatus(t *testing.T) {
	a := New()
	cases := []struct {
		body   string
		status string
		err    string
		none   bool
	}{
		{body: "MessageSid=SM1&MessageStatus=sent&To=%2B15550100001&From=%2B15550100002", status: inbox.MsgSent},
		{body: "MessageSid=SM1&MessageStatus=delivered&To=%2B15550100001", status: inbox.MsgDelivered},
		{body: "MessageSid=SM1&MessageStatus=read&To=%2B15550100001", status: inbox.MsgRead},
		{body: "MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003&To=%2B15550100001", status: inbox.MsgFailed, err: "Unreachable destination handset"},
		{body: "MessageSid=SM1&MessageStatus=failed&ErrorCode=30007&To=%2B15550100001", status: inbox.MsgFailed, err: "30007"},
		{body: "MessageSid=SM1&MessageStatus=queued&To=%2B15550100001", none: true},
		{body: "MessageSid=SM1&MessageStatus=sending&To=%2B15550100001", none: true},
	}
	for _, c := range cases {
		evs, err := a.Parse(cfg(), channel.Request{Body: []byte(c.body)})
		if err != nil {
			t.Fatal(err)
		}
		if c.none {
			if len(evs) != 0 {
				t.Fatalf("%s: %+v", c.body, evs)
			}
			continue
		}
		ev := evs[0]
		if ev.Type != channel.EventStatus || ev.TargetID != "SM1" || ev.Status != c.status || !strings.Contains(ev.Error, c.err) || ev.ChatID != "+15550100001" {
			t.Fatalf("%s: %+v", c.body, ev)
		}
		if ev.ExternalID == "SM1" {
			t.Fatal("status id must differ from the message id")
		}
	}
}

func TestAck(t *testing.T) {
	ct, body := New().Ack()
	if ct != "text/xml" || string(body) != `<?xml version="1.0" encoding="UTF-8"?><Response></Response>` {
		t.Fatal(ct, string(body))
	}
}

func TestSegments(t *testing.T) {
	cases := []struct {
		name  string
		text  string
		enc   string
		segs  int
		chars int
	}{
		{"empty", "", EncodingGSM7, 0, 0},
		{"hello", "hello", EncodingGSM7, 1, 5},
		{"160 gsm", strings.Repeat("a", 160), EncodingGSM7, 1, 160},
		{"161 gsm", strings.Repeat("a", 161), EncodingGSM7, 2, 161},
		{"306 gsm", strings.Repeat("a", 306), EncodingGSM7, 2, 306},
		{"307 gsm", strings.Repeat("a", 307), EncodingGSM7, 3, 307},
		{"extension costs two", "{}[]~\\|^€", EncodingGSM7, 1, 18},
		{"80 euros = 160 septets", strings.Repeat("€", 80), EncodingGSM7, 1, 160},
		{"81 euros", strings.Repeat("€", 81), EncodingGSM7, 2, 162},
		{"escape never split", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 10), EncodingGSM7, 2, 164},
		{"gsm accents", "Ça coûte 5€? ñ ü ß", EncodingUCS2, 1, 18}, // û is not GSM
		{"gsm greek", "ΔΦΓΛΩΠΨΣΘΞ@£$¥èéùìò", EncodingGSM7, 1, 19},
		{"one emoji makes ucs2", strings.Repeat("a", 69) + "😀", EncodingUCS2, 2, 71},
		{"70 ucs2", strings.Repeat("я", 70), EncodingUCS2, 1, 70},
		{"71 ucs2", strings.Repeat("я", 71), EncodingUCS2, 2, 71},
		{"134 ucs2", strings.Repeat("я", 134), EncodingUCS2, 2, 134},
		{"135 ucs2", strings.Repeat("я", 135), EncodingUCS2, 3, 135},
		{"surrogate never split", strings.Repeat("я", 66) + "😀" + strings.Repeat("я", 10), EncodingUCS2, 2, 78},
		{"cyrillic hello", "Привет", EncodingUCS2, 1, 6},
		{"newline cr", "a\r\nb", EncodingGSM7, 1, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			enc, segs, chars := Segments(c.text)
			if enc != c.enc || segs != c.segs || chars != c.chars {
				t.Fatalf("got %s/%d/%d want %s/%d/%d", enc, segs, chars, c.enc, c.segs, c.chars)
			}
		})
	}
}

func simCfg(t *testing.T) (*twiliosim.Server, *httptest.Server, channel.Config) {
	t.Helper()
	sim := twiliosim.New(acct, token, own)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c := cfg()
	c.Config["api_base_url"] = srv.URL
	c.HTTPClient = srv.Client()
	return sim, srv, c
}

func TestSend(t *testing.T) {
	sim, _, c := simCfg(t)
	res, err := New().Send(context.Background(), c, channel.Outgoing{MessageID: "m1", To: "+15550100001", Text: "Your order shipped ✓"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := sim.Messages()
	if len(msgs) != 1 || res.ExternalID != msgs[0].Sid || !strings.HasPrefix(res.ExternalID, "SM") {
		t.Fatalf("%+v %+v", res, msgs)
	}
	m := msgs[0]
	if m.To != "+15550100001" || m.From != own || m.Body != "Your order shipped ✓" || m.StatusCallback != c.WebhookURL {
		t.Fatalf("%+v", m)
	}
}

func TestSendMedia(t *testing.T) {
	sim, _, c := simCfg(t)
	out := channel.Outgoing{To: "+15550100001", Text: "pic", Attachments: []channel.OutMedia{{Kind: "image", URL: "https://files.example/a.jpg"}}}
	_, err := New().Send(context.Background(), c, out)
	var se *channel.SendError
	if !errors.As(err, &se) || se.Retryable || !strings.Contains(se.Reason, "SMS only") {
		t.Fatalf("mms off: %v", err)
	}
	if len(sim.Requests()) != 0 {
		t.Fatal("must not call Twilio")
	}
	c.Config["mms"] = true
	if !New().Rules(c).Media || New().Rules(cfg()).Media {
		t.Fatal("rules must follow mms")
	}
	res, err := New().Send(context.Background(), c, out)
	if err != nil || !strings.HasPrefix(res.ExternalID, "MM") {
		t.Fatal(err, res)
	}
	if got := sim.Messages()[0].MediaURLs; len(got) != 1 || got[0] != "https://files.example/a.jpg" {
		t.Fatal(got)
	}
}

func TestSendErrors(t *testing.T) {
	sim, _, c := simCfg(t)
	a := New()
	ctx := context.Background()
	var se *channel.SendError

	_, err := a.Send(ctx, c, channel.Outgoing{To: "12345", Text: "x"})
	if !errors.As(err, &se) || se.Retryable || se.Code != "21211" || se.HTTPStatus != 400 {
		t.Fatalf("invalid To: %#v", err)
	}
	sim.FailNext(1, 429, 3)
	_, err = a.Send(ctx, c, channel.Outgoing{To: "+15550100001", Text: "x"})
	if !errors.As(err, &se) || !se.Retryable || se.RetryAfter != 3*time.Second {
		t.Fatalf("429: %#v", err)
	}
	sim.FailNext(1, 500, 0)
	_, err = a.Send(ctx, c, channel.Outgoing{To: "+15550100001", Text: "x"})
	if !errors.As(err, &se) || !se.Retryable {
		t.Fatalf("500: %#v", err)
	}
	bad := cfg()
	bad.Config["api_base_url"] = c.Config["api_base_url"]
	bad.Secrets = map[string]string{"auth_token": "wrong"}
	_, err = a.Send(ctx, bad, channel.Outgoing{To: "+15550100001", Text: "x"})
	if !errors.As(err, &se) || se.Retryable || se.Code != "20003" {
		t.Fatalf("401: %#v", err)
	}
	_, err = a.Send(ctx, c, channel.Outgoing{To: "+15550100001", Text: strings.Repeat("a", 1601)})
	if !errors.As(err, &se) || se.Retryable {
		t.Fatalf("too long: %#v", err)
	}
}

func TestFetchMediaFollowsRedirectWithAuth(t *testing.T) {
	sim, srv, c := simCfg(t)
	p := sim.AddMedia([]byte("\xff\xd8jpeg"), "image/jpeg")
	body, ct, err := New().FetchMedia(context.Background(), c, srv.URL+p)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	b, _ := io.ReadAll(body)
	if string(b) != "\xff\xd8jpeg" || ct != "image/jpeg" {
		t.Fatal(string(b), ct)
	}
	bad := c
	bad.Secrets = map[string]string{"auth_token": "nope"}
	if _, _, err := New().FetchMedia(context.Background(), bad, srv.URL+p); err == nil {
		t.Fatal("wrong credentials must fail")
	}
	if _, _, err := New().FetchMedia(context.Background(), c, "file:///etc/passwd"); err == nil {
		t.Fatal("non-http ref must fail")
	}
}

func TestDeliverAndStatusCallback(t *testing.T) {
	a := New()
	var got []channel.Event
	var hookURL string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c := cfg()
		req := channel.Request{Method: r.Method, URL: hookURL, Header: r.Header, Body: body}
		if err := a.Verify(c, req); err != nil {
			w.WriteHeader(403)
			return
		}
		evs, _ := a.Parse(c, req)
		got = append(got, evs...)
		ct, ack := a.Ack()
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(ack)
	}))
	defer hook.Close()
	hookURL = hook.URL + "/webhooks/ch1?k=v"

	params := twiliosim.InboundParams(twiliosim.Inbound{AccountSid: acct, From: "+15550100001", To: own, Body: "Привет & hi"})
	if err := twiliosim.Deliver(context.Background(), hookURL, token, params); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Text != "Привет & hi" {
		t.Fatalf("%+v", got)
	}
	if err := twiliosim.DeliverWith(context.Background(), twiliosim.DeliverOptions{MaxAttempts: 1}, hookURL, "wrong-token", params); err == nil {
		t.Fatal("bad signature must be refused")
	}

	// Send through the simulator with the hook as StatusCallback, then drive a status.
	sim, _, c := simCfg(t)
	c.WebhookURL = hookURL
	res, err := a.Send(context.Background(), c, channel.Outgoing{To: "+15550100001", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.SendStatus(context.Background(), res.ExternalID, "undelivered", "30005"); err != nil {
		t.Fatal(err)
	}
	last := got[len(got)-1]
	if last.Type != channel.EventStatus || last.TargetID != res.ExternalID || last.Status != inbox.MsgFailed || !strings.Contains(last.Error, "Unknown destination") {
		t.Fatalf("%+v", last)
	}
}

func TestValidateConfig(t *testing.T) {
	a := New()
	if err := a.ValidateConfig(map[string]any{"account_sid": acct, "phone_number": own, "mms": true}, map[string]string{"auth_token": token}); err != nil {
		t.Fatal(err)
	}
	bad := []map[string]any{
		{"account_sid": "AC1", "phone_number": own},
		{"account_sid": acct, "phone_number": "15550100002"},
		{"account_sid": acct},
		{"account_sid": acct, "phone_number": own, "mms": "yes"},
	}
	for i, c := range bad {
		if err := a.ValidateConfig(c, map[string]string{"auth_token": token}); !inbox.IsCode(err, inbox.Invalid) {
			t.Fatalf("case %d: %v", i, err)
		}
	}
	if err := a.ValidateConfig(map[string]any{"account_sid": acct, "phone_number": own}, nil); err == nil {
		t.Fatal("missing auth_token")
	}
}

func FuzzParseTwilio(f *testing.F) {
	f.Add([]byte("MessageSid=SMxxxx&AccountSid=ACxxxx&From=%2B15550100001&To=%2B15550100002&Body=Hi+there&NumMedia=0"))
	f.Add([]byte("MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003"))
	f.Add([]byte("NumMedia=99999999999&MediaUrl0=x"))
	f.Add([]byte("%zz"))
	f.Fuzz(func(t *testing.T, body []byte) {
		a := New()
		_, _ = a.Parse(cfg(), channel.Request{Body: body})
		h := http.Header{}
		h.Set(SignatureHeader, "abc")
		if a.Verify(cfg(), channel.Request{Method: "POST", URL: string(body), Header: h, Body: body}) == nil {
			t.Fatal("garbage verified")
		}
	})
}

func TestGSMFastPathMatchesTable(t *testing.T) {
	for r := rune(0); r < 0x2200; r++ {
		if gsmCost(r) != gsmTable[r] {
			t.Fatalf("%U: fast path %d, table %d", r, gsmCost(r), gsmTable[r])
		}
	}
}
