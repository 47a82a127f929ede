package messenger

import (
	"testing"

	"github.com/parleyhq/parley/internal/channel"
)

func BenchmarkParse(b *testing.B) {
	body := body(`{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1739321024000,"message":{"mid":"m_1","text":"Gr\u00fc\u00dfe \ud83d\udc4b"}},` +
		`{"sender":{"id":"U1"},"recipient":{"id":"` + page + `"},"timestamp":1739321024001,"delivery":{"mids":["m_a"],"watermark":1739321024000}}`)
	cfg := channel.Config{Config: map[string]any{"page_id": page}}
	a := New()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := a.Parse(cfg, channel.Request{Body: body}); err != nil {
			b.Fatal(err)
		}
	}
}
