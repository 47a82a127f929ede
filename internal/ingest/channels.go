// Package ingest is Parley's inbound pipeline: the webhook handler verifies a
// provider request and appends its raw bytes to the inbound log (acknowledged
// only after the group commit that holds it), and workers turn logged entries
// into messages through the channel adapters, in order per channel.
package ingest

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// ChannelStore is what resolving a channel needs from the store.
type ChannelStore interface {
	ChannelByID(ctx context.Context, id string) (inbox.Channel, error)
	GetProviderAccount(ctx context.Context, wsID, id string) (inbox.ProviderAccount, error)
}

// Resolved is a channel with its adapter and adapter config (decrypted secrets).
type Resolved struct {
	Channel inbox.Channel
	Adapter channel.Adapter
	Config  channel.Config
}

// Channels resolves channel ids to adapters and configs, caching the result
// for a short TTL (webhooks arrive in bursts; secrets change rarely — call
// Invalidate when a channel or provider account is changed).
type Channels struct {
	Store       ChannelStore
	Registry    *channel.Registry
	OpenSecrets func(sealed []byte) (map[string]string, error)
	PublicURL   string
	HTTPClient  *http.Client
	TTL         time.Duration // default 5s

	mu    sync.Mutex
	cache map[string]cachedChannel
}

type cachedChannel struct {
	r   Resolved
	exp time.Time
}

// WebhookURL is the public URL of a channel's webhook.
func (c *Channels) WebhookURL(channelID string) string {
	return strings.TrimRight(c.PublicURL, "/") + "/webhooks/" + channelID
}

// Invalidate drops a cached channel ("" drops all).
func (c *Channels) Invalidate(channelID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if channelID == "" {
		c.cache = nil
		return
	}
	delete(c.cache, channelID)
}

// Resolve returns the channel, its adapter and config. Unknown channels and
// kinds without an adapter are NotFound.
func (c *Channels) Resolve(ctx context.Context, channelID string) (Resolved, error) {
	ttl := c.TTL
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	now := time.Now()
	c.mu.Lock()
	if e, ok := c.cache[channelID]; ok && now.Before(e.exp) {
		c.mu.Unlock()
		return e.r, nil
	}
	c.mu.Unlock()
	ch, err := c.Store.ChannelByID(ctx, channelID)
	if err != nil {
		return Resolved{}, err
	}
	ad, ok := c.Registry.Get(ch.Kind)
	if !ok {
		return Resolved{}, inbox.Errorf(inbox.NotFound, "no adapter for channel kind %q", ch.Kind)
	}
	cfg := channel.Config{
		ChannelID:   ch.ID,
		WorkspaceID: ch.WorkspaceID,
		Kind:        ch.Kind,
		Config:      ch.Config,
		WebhookURL:  c.WebhookURL(ch.ID),
		HTTPClient:  c.HTTPClient,
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if len(ch.SecretsEnc) > 0 && c.OpenSecrets != nil {
		if cfg.Secrets, err = c.OpenSecrets(ch.SecretsEnc); err != nil {
			return Resolved{}, inbox.Wrap(inbox.Internal, err, "cannot open channel secrets")
		}
	}
	if ch.ProviderAccountID != "" {
		acc, err := c.Store.GetProviderAccount(ctx, ch.WorkspaceID, ch.ProviderAccountID)
		if err != nil {
			return Resolved{}, err
		}
		cfg.AccountConfig = acc.Config
		if len(acc.SecretsEnc) > 0 && c.OpenSecrets != nil {
			if cfg.AccountSecrets, err = c.OpenSecrets(acc.SecretsEnc); err != nil {
				return Resolved{}, inbox.Wrap(inbox.Internal, err, "cannot open provider account secrets")
			}
		}
	}
	r := Resolved{Channel: ch, Adapter: ad, Config: cfg}
	c.mu.Lock()
	if c.cache == nil {
		c.cache = map[string]cachedChannel{}
	}
	c.cache[channelID] = cachedChannel{r: r, exp: now.Add(ttl)}
	c.mu.Unlock()
	return r, nil
}

// Adapter is Resolve in the shape the outbound and media packages take.
func (c *Channels) Adapter(ctx context.Context, channelID string) (channel.Adapter, channel.Config, error) {
	r, err := c.Resolve(ctx, channelID)
	return r.Adapter, r.Config, err
}
