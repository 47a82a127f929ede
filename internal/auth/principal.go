package auth

import (
	"context"

	"github.com/parleyhq/parley/internal/inbox"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	User    inbox.User
	Session *inbox.Session  // set for cookie authentication
	Token   *inbox.APIToken // set for bearer authentication (scoped to Token.WorkspaceID)
	// WorkspaceID and Role are set on workspace-scoped routes.
	WorkspaceID string
	Role        inbox.Role
}

// Actor returns the principal as a message/reaction actor.
func (p *Principal) Actor() inbox.Actor {
	return inbox.Actor{Type: "agent", ID: p.User.ID, Name: p.User.Name}
}

type principalKey struct{}

// WithPrincipal stores p in ctx.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the request's principal, nil when unauthenticated.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
