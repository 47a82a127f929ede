// Package messenger is the Facebook Messenger adapter (kind "messenger").
package messenger

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/channel/meta"
	"github.com/parleyhq/parley/internal/inbox"
)

// Kind is the channel kind of this adapter.
const Kind = "messenger"

// Config and secret names (API.md).
const (
	ConfigPageID    = "page_id"
	SecretPageToken = "page_access_token"
)

// Limits of the Send API.
const (
	MaxTextLen   = 2000
	ReplyWindow  = 24 * time.Hour
	TagWindow    = 7 * 24 * time.Hour
	MaxMediaSize = 25 << 20 // any attachment kind (Send API reference; providers.md gives none)
)

// Adapter implements channel.Adapter for Messenger.
type Adapter struct{ meta.Common }

// New returns the Messenger adapter.
func New() *Adapter { return &Adapter{} }

var (
	_ channel.Adapter       = (*Adapter)(nil)
	_ channel.ProfileLookup = (*Adapter)(nil) // webhooks carry no names (providers.md §2)
)

// Kind returns "messenger".
func (*Adapter) Kind() string { return Kind }

// Flavor describes Messenger to the shared parser.
func Flavor(pageID string) meta.Flavor {
	return meta.Flavor{Kind: Kind, Object: "page", Label: "Messenger", OwnIDs: []string{pageID}}
}

// Parse reads a Messenger ("page") webhook body. Sender names are not in
// payloads: use Profile.
func (*Adapter) Parse(cfg channel.Config, req channel.Request) ([]channel.Event, error) {
	return meta.ParseMessaging(req.Body, Flavor(cfg.String(ConfigPageID)))
}

// Rules are Messenger's constraints.
func (*Adapter) Rules(channel.Config) channel.Rules {
	return channel.Rules{
		MaxTextLen:   MaxTextLen,
		TextLenUnit:  "chars",
		ReplyWindow:  ReplyWindow,
		TagWindow:    TagWindow,
		Media:        true,
		MaxMediaSize: MaxMediaSize,
	}
}

// ValidateConfig requires page_id and the three secrets.
func (*Adapter) ValidateConfig(config map[string]any, secrets map[string]string) error {
	var v inbox.Validator
	meta.ValidateConfig(&v, config, secrets, ConfigPageID, SecretPageToken)
	return v.Err()
}

// Send posts to {base}/me/messages with the page token.
func (*Adapter) Send(ctx context.Context, cfg channel.Config, out channel.Outgoing) (channel.SendResult, error) {
	if utf8.RuneCountInString(out.Text) > MaxTextLen {
		return channel.SendResult{}, &channel.SendError{Code: "invalid", Reason: "text longer than 2000 characters"}
	}
	cl := meta.NewClient(cfg, SecretPageToken)
	return meta.SendMessaging(ctx, cl, cl.URL("me/messages"), out)
}

// FetchMedia downloads an attachment URL from the webhook (a public CDN URL
// that expires; no token is sent to the CDN).
func (*Adapter) FetchMedia(ctx context.Context, cfg channel.Config, ref string) (io.ReadCloser, string, error) {
	return FetchURL(ctx, cfg.Client(), ref)
}

// FetchURL GETs a webhook attachment URL.
func FetchURL(ctx context.Context, client *http.Client, ref string) (io.ReadCloser, string, error) {
	u, err := url.Parse(ref)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", inbox.Errorf(inbox.NotFound, "media reference is not a URL")
	}
	cl := &meta.Client{HTTP: client}
	return cl.Download(ctx, ref)
}

// Profile is a Messenger user's public profile.
type Profile struct {
	FirstName  string `json:"first_name"`
	LastName   string `json:"last_name"`
	ProfilePic string `json:"profile_pic"`
}

// GetProfile calls GET {base}/{PSID}?fields=first_name,last_name,profile_pic
// and returns the user as a Party.
func GetProfile(ctx context.Context, cfg channel.Config, psid string) (channel.Party, error) {
	cl := meta.NewClient(cfg, SecretPageToken)
	var p Profile
	if err := cl.Do(ctx, http.MethodGet, cl.URL(url.PathEscape(psid))+"?fields=first_name,last_name,profile_pic", nil, &p); err != nil {
		return channel.Party{}, err
	}
	return channel.Party{
		Identifier: psid,
		Name:       strings.TrimSpace(p.FirstName + " " + p.LastName),
		AvatarURL:  p.ProfilePic,
	}, nil
}

// Profile looks up psid's name and picture (see GetProfile).
func (*Adapter) Profile(ctx context.Context, cfg channel.Config, psid string) (channel.Party, error) {
	return GetProfile(ctx, cfg, psid)
}
