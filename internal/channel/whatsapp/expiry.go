package whatsapp

import (
	"time"

	"github.com/parleyhq/parley/internal/channel"
)

// MediaLifetime is how long a webhook's media id can be resolved to a
// download URL (providers.md: "Webhook media ids expire in ~7 days").
const MediaLifetime = 7 * 24 * time.Hour

// MediaExpiresAfter implements channel.ExpiringMedia (it overrides the
// Messenger CDN lifetime of the embedded meta.Common).
func (*Adapter) MediaExpiresAfter(m channel.Media) time.Duration {
	if m.ProviderRef == "" {
		return 0
	}
	return MediaLifetime
}
