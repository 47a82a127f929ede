package media

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Share token errors.
var (
	errTokenInvalid = errors.New("media: invalid share token")
	errTokenExpired = errors.New("media: share token expired")
)

// Signer makes and checks share tokens: base64url(attachment id ‖ expiry
// (unix seconds, 8 bytes) ‖ HMAC-SHA256 of both), keyed by a key derived from
// the server's secret key.
type Signer struct{ key []byte }

// NewSigner derives the share key from the server secret key.
func NewSigner(secretKey []byte) Signer {
	m := hmac.New(sha256.New, secretKey)
	m.Write([]byte("parley/media-share/v1"))
	return Signer{key: m.Sum(nil)}
}

func (s Signer) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(payload)
	return m.Sum(nil)
}

// Token signs attachment id until expires.
func (s Signer) Token(id string, expires time.Time) string {
	payload := binary.BigEndian.AppendUint64([]byte(id), uint64(expires.Unix()))
	return base64.RawURLEncoding.EncodeToString(append(payload, s.mac(payload)...))
}

// Verify returns the attachment id of a valid token. A malformed or tampered
// token is errTokenInvalid; an authentic but expired one errTokenExpired.
func (s Signer) Verify(token string, now time.Time) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 1+8+sha256.Size {
		return "", errTokenInvalid
	}
	payload, mac := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if !hmac.Equal(mac, s.mac(payload)) {
		return "", errTokenInvalid
	}
	exp := int64(binary.BigEndian.Uint64(payload[len(payload)-8:]))
	if now.Unix() > exp {
		return "", errTokenExpired
	}
	return string(payload[:len(payload)-8]), nil
}
