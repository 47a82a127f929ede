package telegram

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/internal/channel"
)

var benchUpdate = []byte(`{"update_id":900001,"message":{"message_id":77,"date":1700000000,"chat":{"id":-1001234567890,"type":"supergroup","title":"Ops"},"from":{"id":4242,"is_bot":false,"first_name":"Li"},"reply_to_message":{"message_id":70,"date":1,"chat":{"id":-1001234567890,"type":"supergroup"}},"text":"hello \u043c\u0438\u0440"}}`)

func BenchmarkVerifyAndParse(b *testing.B) {
	a := New()
	c := cfg()
	h := http.Header{}
	h.Set(SecretHeader, "s3cr3t_Value-1")
	req := channel.Request{Method: "POST", Header: h, Body: benchUpdate}
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
