package twilio

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
)

func BenchmarkVerifyAndParse(b *testing.B) {
	a := New()
	c := cfg()
	body := "ToCountry=US&SmsMessageSid=SMxxxx&NumMedia=0&SmsSid=SMxxxx&SmsStatus=received&Body=Hi+there&To=%2B15550100002&NumSegments=1&MessageSid=SMxxxx&AccountSid=ACxxxx&From=%2B15550100001&ApiVersion=2010-04-01"
	p, _ := url.ParseQuery(body)
	h := http.Header{}
	h.Set(SignatureHeader, Sign(token, c.WebhookURL, p))
	req := channel.Request{Method: "POST", URL: c.WebhookURL, Header: h, Body: []byte(body)}
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Verify(c, req); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Parse(c, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSegments(b *testing.B) {
	text := strings.Repeat("Hello {world} ", 50) + "ы"
	b.ReportAllocs()
	for b.Loop() {
		Segments(text)
	}
}
