package meta

import (
	"strings"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// Common is the webhook half of channel.Adapter that every Meta kind shares:
// embed it in an adapter to get Verify, Handshake and Ack.
type Common struct{}

// Verify checks X-Hub-Signature-256 over the raw body with the app secret.
func (Common) Verify(cfg channel.Config, req channel.Request) error { return Verify(cfg, req) }

// Handshake answers the hub.challenge GET.
func (Common) Handshake(cfg channel.Config, req channel.Request) (int, string, bool) {
	return Handshake(cfg, req)
}

// Ack is the webhook answer.
func (Common) Ack() (string, []byte) { return Ack() }

// ValidateConfig records on v what every Meta kind requires: config[idKey]
// set (not blank), config.api_base_url an http(s) URL when given, and the
// secrets tokenKey, app_secret and verify_token. Kind-specific rules stay
// with the adapter.
func ValidateConfig(v *inbox.Validator, config map[string]any, secrets map[string]string, idKey, tokenKey string) {
	id, _ := config[idKey].(string)
	v.Check(strings.TrimSpace(id) != "", "config."+idKey, "required")
	if b, ok := config["api_base_url"]; ok {
		s, _ := b.(string)
		v.Check(s == "" || strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"), "config.api_base_url", "must be an http(s) URL")
	}
	v.Check(secrets[tokenKey] != "", "secrets."+tokenKey, "required")
	v.Check(secrets[SecretAppSecret] != "", "secrets."+SecretAppSecret, "required")
	v.Check(secrets[SecretVerifyToken] != "", "secrets."+SecretVerifyToken, "required")
}
