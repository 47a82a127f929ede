package channel_test

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/instagram"
	"github.com/parleyhq/parley/internal/channel/messenger"
	"github.com/parleyhq/parley/internal/channel/meta"
	"github.com/parleyhq/parley/internal/channel/telegram"
	"github.com/parleyhq/parley/internal/channel/twilio"
	"github.com/parleyhq/parley/internal/channel/wappi"
	"github.com/parleyhq/parley/internal/channel/whatsapp"
)

// TestMediaExpiry: the attachments each adapter parses from a webhook (as
// providers.md shows them) say how long their reference can be fetched.
func TestMediaExpiry(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name   string
		ad     channel.Adapter
		config map[string]any
		body   string
		want   time.Duration
	}{
		{"whatsapp media id: ~7 days", whatsapp.New(), nil,
			`{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"PNID"},"contacts":[{"profile":{"name":"Ana"},"wa_id":"15552223333"}],"messages":[{"from":"15552223333","id":"wamid.XYZ","timestamp":"1700000000","type":"image","image":{"id":"MEDIA1","mime_type":"image/jpeg","sha256":"abc"}}]}}]}]}`,
			7 * day},
		{"messenger CDN url", messenger.New(), nil,
			`{"object":"page","entry":[{"id":"PAGE","time":1700000000123,"messaging":[{"sender":{"id":"PSID"},"recipient":{"id":"PAGE"},"timestamp":1700000000000,"message":{"mid":"m_1","attachments":[{"type":"image","payload":{"url":"https://cdn.example/a.jpg?oh=sig"}}]}}]}]}`,
			meta.CDNMediaLifetime},
		{"instagram CDN url", instagram.New(), nil,
			`{"object":"instagram","entry":[{"id":"IGID","time":1700000000123,"messaging":[{"sender":{"id":"IGSID"},"recipient":{"id":"IGID"},"timestamp":1700000000000,"message":{"mid":"m_2","attachments":[{"type":"image","payload":{"url":"https://cdn.example/b.jpg?oh=sig"}}]}}]}]}`,
			meta.CDNMediaLifetime},
		{"wappi whatsapp: media/download by message id, ~20 days", wappi.New(), map[string]any{"profile_id": "0a1b2c3d-4e5f", "network": "whatsapp"},
			`{"messages":[{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":"3EB0FFEE","type":"image","body":"AAAA","from":"15550009999@c.us","chatId":"15550009999@c.us","senderName":"Tom","time":1700000000}]}`,
			20 * day},
		{"wappi telegram: signed file_link, ~7 days", wappi.New(), map[string]any{"profile_id": "0a1b2c3d-4e5f", "network": "telegram"},
			`{"messages":[{"wh_type":"incoming_message","profile_id":"0a1b2c3d-4e5f","id":"42","type":"image","body":"AAAA","from":"777","chatId":"777","chat_type":"user","senderName":"Tom","time":1700000000,"file_link":"https://wappi.pro/files/x.jpg?sig=1"}]}`,
			7 * day},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			em, ok := tc.ad.(channel.ExpiringMedia)
			if !ok {
				t.Fatal("adapter does not implement channel.ExpiringMedia")
			}
			evs, err := tc.ad.Parse(channel.Config{Kind: tc.ad.Kind(), Config: tc.config}, channel.Request{Method: "POST", Body: []byte(tc.body)})
			if err != nil || len(evs) != 1 || len(evs[0].Attachments) != 1 {
				t.Fatalf("parse: %+v %v", evs, err)
			}
			if got := em.MediaExpiresAfter(evs[0].Attachments[0]); got != tc.want {
				t.Fatalf("expires after %v, want %v (ref %q)", got, tc.want, evs[0].Attachments[0].ProviderRef)
			}
		})
	}
	for _, ad := range []channel.Adapter{telegram.New(), twilio.New()} {
		if _, ok := ad.(channel.ExpiringMedia); ok {
			t.Errorf("%s: its media references do not expire", ad.Kind())
		}
	}
}
