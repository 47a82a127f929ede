package meta

import (
	"crypto/sha256"
	"encoding/hex"
)

// shortHash is a stable short digest used to build synthetic ids.
func shortHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// ShortHash exposes shortHash for the product packages.
func ShortHash(b []byte) string { return shortHash(b) }
