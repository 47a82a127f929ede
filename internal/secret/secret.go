// Package secret seals channel and provider-account secrets at rest with
// AES-256-GCM. The sealed format is: version byte (1) | 12-byte random nonce |
// ciphertext+tag. The version byte is authenticated as additional data.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
)

const version1 byte = 1

// ErrInvalid is returned when sealed data is malformed, tampered with or sealed with another key.
var ErrInvalid = errors.New("secret: sealed data is invalid or was sealed with another key")

// Box seals and opens values with one key. It is safe for concurrent use.
type Box struct{ aead cipher.AEAD }

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext with a fresh random nonce.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	ns := b.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+b.aead.Overhead())
	out[0] = version1
	if _, err := rand.Read(out[1 : 1+ns]); err != nil {
		return nil, err
	}
	return b.aead.Seal(out, out[1:1+ns], plaintext, out[:1]), nil
}

// Open decrypts what Seal produced; ErrInvalid on any tampering.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < 1+ns+b.aead.Overhead() || sealed[0] != version1 {
		return nil, ErrInvalid
	}
	pt, err := b.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], sealed[:1])
	if err != nil {
		return nil, ErrInvalid
	}
	return pt, nil
}

// SealMap seals a map of named secret values as JSON. An empty map seals to nil.
func (b *Box) SealMap(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	js, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return b.Seal(js)
}

// OpenMap opens what SealMap produced; nil or empty input is an empty map.
func (b *Box) OpenMap(sealed []byte) (map[string]string, error) {
	m := map[string]string{}
	if len(sealed) == 0 {
		return m, nil
	}
	js, err := b.Open(sealed)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, ErrInvalid
	}
	return m, nil
}
