// Package whatsapp is the WhatsApp Cloud API adapter (kind "whatsapp").
package whatsapp

import (
	"context"
	"io"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/meta"
	"github.com/parleyhq/parley/internal/inbox"
)

// Kind is the channel kind of this adapter.
const Kind = "whatsapp"

// Config and secret names (API.md).
const (
	ConfigPhoneNumberID = "phone_number_id"
	ConfigWABAID        = "waba_id"
	SecretAccessToken   = "access_token"
)

// Limits of the Cloud API.
const (
	MaxTextLen    = 4096
	MaxCaptionLen = 1024
	ReplyWindow   = 24 * time.Hour
	VoiceMime     = "audio/ogg; codecs=opus"
	MaxMediaSize  = 100 << 20 // documents, and any kind not below
)

// Per-kind file caps of the Cloud API (Meta's "Supported media types";
// providers.md gives none). A sticker is capped at the animated size: a
// static one over 100 KB cannot be told apart before it is sent.
const (
	MaxImageSize      = 5 << 20
	MaxAudioVideoSize = 16 << 20 // audio, voice notes and video
	MaxStickerSize    = 500 << 10
)

// Adapter implements channel.Adapter for WhatsApp Cloud API.
type Adapter struct{ meta.Common }

// New returns the WhatsApp adapter.
func New() *Adapter { return &Adapter{} }

var _ channel.Adapter = (*Adapter)(nil)

// Kind returns "whatsapp".
func (*Adapter) Kind() string { return Kind }

// Parse turns a webhook body into events.
func (*Adapter) Parse(cfg channel.Config, req channel.Request) ([]channel.Event, error) {
	return Parse(req.Body, cfg.String(ConfigPhoneNumberID))
}

// Rules are the Cloud API's constraints.
func (*Adapter) Rules(channel.Config) channel.Rules {
	return channel.Rules{
		MaxTextLen:   MaxTextLen,
		TextLenUnit:  "chars",
		ReplyWindow:  ReplyWindow,
		Media:        true,
		Templates:    true,
		VoiceMime:    VoiceMime,
		MaxMediaSize: MaxMediaSize,
		MaxMediaSizes: map[string]int64{
			inbox.KindImage:   MaxImageSize,
			inbox.KindAudio:   MaxAudioVideoSize,
			inbox.KindVoice:   MaxAudioVideoSize,
			inbox.KindVideo:   MaxAudioVideoSize,
			inbox.KindSticker: MaxStickerSize,
		},
	}
}

// ValidateConfig requires phone_number_id and the three secrets; waba_id,
// when given, is a string.
func (*Adapter) ValidateConfig(config map[string]any, secrets map[string]string) error {
	var v inbox.Validator
	meta.ValidateConfig(&v, config, secrets, ConfigPhoneNumberID, SecretAccessToken)
	if w, ok := config[ConfigWABAID]; ok {
		_, isStr := w.(string)
		v.Check(isStr || w == nil, "config.waba_id", "must be a string")
	}
	return v.Err()
}

// FetchMedia resolves a media id to its short-lived URL, then downloads it;
// both requests carry the Bearer token.
func (*Adapter) FetchMedia(ctx context.Context, cfg channel.Config, ref string) (io.ReadCloser, string, error) {
	cl := meta.NewClient(cfg, SecretAccessToken)
	return FetchMedia(ctx, cl, ref)
}

// Send delivers out.
func (*Adapter) Send(ctx context.Context, cfg channel.Config, out channel.Outgoing) (channel.SendResult, error) {
	cl := meta.NewClient(cfg, SecretAccessToken)
	return Send(ctx, cl, cfg.String(ConfigPhoneNumberID), out)
}
