package meta

import (
	"time"

	"github.com/parleyhq/parley/internal/channel"
)

// CDNMediaLifetime is how long a Messenger or Instagram attachment URL is
// assumed to stay fetchable. providers.md only says these public CDN URLs
// expire and must be fetched promptly; the exact lifetime is undocumented
// (ASSUMED), and the prefetcher fetches them within seconds anyway.
const CDNMediaLifetime = 24 * time.Hour

// MediaExpiresAfter implements channel.ExpiringMedia for the Messenger-style
// kinds (Messenger, Instagram): their attachments are CDN URLs that expire.
// WhatsApp, which embeds Common too, has its own.
func (Common) MediaExpiresAfter(m channel.Media) time.Duration {
	if m.ProviderRef == "" {
		return 0
	}
	return CDNMediaLifetime
}
