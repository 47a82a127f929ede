package wappi

import (
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/channel"
)

// Media lifetimes (providers.md, Wappi): media/download keeps WhatsApp files
// as file_b64 for ~20 days, and a file_link (Telegram, MAX; also seen in
// WhatsApp payloads) is signed for ~7 days.
const (
	FileLinkLifetime = 7 * 24 * time.Hour
	DownloadLifetime = 20 * 24 * time.Hour
)

// MediaExpiresAfter implements channel.ExpiringMedia: a ProviderRef that is
// a URL is a signed file_link; otherwise it is a message id for media/download.
func (*Adapter) MediaExpiresAfter(m channel.Media) time.Duration {
	ref := m.ProviderRef
	switch {
	case ref == "":
		return 0
	case strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://"):
		return FileLinkLifetime
	}
	return DownloadLifetime
}
