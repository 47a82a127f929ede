package wappi

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
)

var benchBody = []byte(`{"messages":[{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":"3EB0FFEE","type":"chat","body":"hi","from":"15550009999@c.us","chatId":"15550009999@c.us","senderName":"Tom","time":1700000000},{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":"G1","type":"chat","body":"\u043f\u0440\u0438\u0432\u0435\u0442","from":"15551112222@c.us","chatId":"120363012345678901@g.us","senderName":"Ana","time":1700000001}]}`)

func BenchmarkVerifyAndParse(b *testing.B) {
	a := New()
	c := cfgFor(NetWhatsApp)
	h := http.Header{}
	h.Set("Authorization", hookSec)
	req := channel.Request{Method: "POST", Header: h, Body: benchBody}
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
