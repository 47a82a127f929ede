package channel

import "time"

// ExpiringMedia is implemented by adapters whose media references stop
// working some time after the message arrived (WhatsApp media ids, Meta CDN
// URLs, Wappi file links). The media service fetches such files in the
// background before they expire, instead of on their first open, which may
// come too late.
type ExpiringMedia interface {
	// MediaExpiresAfter is how long after its message arrived m.ProviderRef
	// can still be fetched; 0 means it does not expire.
	MediaExpiresAfter(m Media) time.Duration
}
