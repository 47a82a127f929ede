// Package instagram is the Instagram Messaging adapter (kind "instagram").
package instagram

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/messenger"
	"github.com/parleyhq/parley/internal/channel/meta"
	"github.com/parleyhq/parley/internal/inbox"
)

// Kind is the channel kind of this adapter.
const Kind = "instagram"

// Config and secret names (API.md). page_id is optional: when set, sends go
// to {base}/{page_id}/messages, else to {base}/{account_id}/messages.
const (
	ConfigAccountID   = "account_id"
	ConfigPageID      = "page_id"
	SecretAccessToken = "access_token"
)

// Limits of Instagram Messaging.
const (
	MaxTextBytes = 1000
	ReplyWindow  = 24 * time.Hour
	TagWindow    = 7 * 24 * time.Hour
	MaxMediaSize = 25 << 20 // audio and video (providers.md §3), and other kinds
	MaxImageSize = 8 << 20  // images (providers.md §3); stickers are sent as images
)

// Adapter implements channel.Adapter for Instagram Messaging.
type Adapter struct{ meta.Common }

// New returns the Instagram adapter.
func New() *Adapter { return &Adapter{} }

var (
	_ channel.Adapter       = (*Adapter)(nil)
	_ channel.ProfileLookup = (*Adapter)(nil) // webhooks carry no names (providers.md §3)
)

// Kind returns "instagram".
func (*Adapter) Kind() string { return Kind }

// Flavor describes Instagram to the shared parser.
func Flavor(accountID, pageID string) meta.Flavor {
	return meta.Flavor{Kind: Kind, Object: "instagram", Label: "Instagram", OwnIDs: []string{accountID, pageID}}
}

// Parse reads an Instagram ("instagram") webhook body: messages (echoes carry
// is_echo), messaging_seen (read.mid), reactions, postbacks.
func (*Adapter) Parse(cfg channel.Config, req channel.Request) ([]channel.Event, error) {
	return meta.ParseMessaging(req.Body, Flavor(cfg.String(ConfigAccountID), cfg.String(ConfigPageID)))
}

// Rules: text up to 1000 UTF-8 bytes, 24 h window, 7-day HUMAN_AGENT tag.
func (*Adapter) Rules(channel.Config) channel.Rules {
	return channel.Rules{
		MaxTextLen:   MaxTextBytes,
		TextLenUnit:  "bytes",
		ReplyWindow:  ReplyWindow,
		TagWindow:    TagWindow,
		Media:        true,
		MaxMediaSize: MaxMediaSize,
		MaxMediaSizes: map[string]int64{
			inbox.KindImage:   MaxImageSize,
			inbox.KindSticker: MaxImageSize,
		},
	}
}

// ValidateConfig requires account_id and the three secrets.
func (*Adapter) ValidateConfig(config map[string]any, secrets map[string]string) error {
	var v inbox.Validator
	meta.ValidateConfig(&v, config, secrets, ConfigAccountID, SecretAccessToken)
	return v.Err()
}

// Send posts to {base}/{page_id or account_id}/messages. Text over 1000
// UTF-8 bytes is refused.
func (*Adapter) Send(ctx context.Context, cfg channel.Config, out channel.Outgoing) (channel.SendResult, error) {
	if len(out.Text) > MaxTextBytes {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "text longer than 1000 bytes"}
	}
	id := cfg.String(ConfigPageID)
	if id == "" {
		id = cfg.String(ConfigAccountID)
	}
	if id == "" {
		return channel.SendResult{}, &channel.SendError{Code: "config", Reason: "account_id is not configured"}
	}
	cl := meta.NewClient(cfg, SecretAccessToken)
	return meta.SendMessaging(ctx, cl, cl.URL(url.PathEscape(id)+"/messages"), out)
}

// FetchMedia downloads an attachment URL from the webhook.
func (*Adapter) FetchMedia(ctx context.Context, cfg channel.Config, ref string) (io.ReadCloser, string, error) {
	return messenger.FetchURL(ctx, cfg.Client(), ref)
}

// Profile looks up an IGSID: GET {base}/{IGSID}?fields=name,username,profile_pic.
func (*Adapter) Profile(ctx context.Context, cfg channel.Config, igsid string) (channel.Party, error) {
	cl := meta.NewClient(cfg, SecretAccessToken)
	var p struct {
		Name       string `json:"name"`
		Username   string `json:"username"`
		ProfilePic string `json:"profile_pic"`
	}
	if err := cl.Do(ctx, http.MethodGet, cl.URL(url.PathEscape(igsid))+"?fields=name,username,profile_pic", nil, &p); err != nil {
		return channel.Party{}, err
	}
	name := p.Name
	if name == "" {
		name = p.Username
	}
	return channel.Party{Identifier: igsid, Name: name, AvatarURL: p.ProfilePic}, nil
}
