package server

import (
	"context"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/wire"
)

// TrustingAudience is the demo access policy of the original design: the
// userName argument is believed. The subscription reads that user's
// personal channel, the demo tenant's company channel and the public one.
type TrustingAudience struct{}

// Channels implements graph.Audience.
func (TrustingAudience) Channels(_ context.Context, userName string) ([]wire.Channel, error) {
	if err := wire.ValidateName("userName", userName, 0); err != nil {
		return nil, err
	}
	return channelsOf(auth.Identity{Tenant: wire.DemoTenant, User: userName})
}

// TokenAudience is AUTH_MODE=jwt's policy: a subscriber reads only what its
// verified identity allows — its own notices, its store's, its company's
// and public ones — and userName must name the token's own user.
type TokenAudience struct{}

// Channels implements graph.Audience.
func (TokenAudience) Channels(ctx context.Context, userName string) ([]wire.Channel, error) {
	id, ok := auth.FromContext(ctx)
	if !ok || id.User == "" || id.Tenant == "" {
		return nil, forbidden("a user token is required to subscribe")
	}
	if userName != id.User {
		return nil, forbidden("userName must be the token's own user")
	}
	return channelsOf(id)
}

// channelsOf lists the channels id may read, derived on the server from the
// identity alone.
func channelsOf(id auth.Identity) ([]wire.Channel, error) {
	person, err := wire.PersonChannel(id.Tenant, id.User)
	if err != nil {
		return nil, err
	}
	company, err := wire.NewChannel(id.Tenant, wire.ScopeCompany, "")
	if err != nil {
		return nil, err
	}
	chs := []wire.Channel{person, company, wire.PublicChannel()}
	if id.Store != "" {
		store, err := wire.NewChannel(id.Tenant, wire.ScopeStore, id.Store)
		if err != nil {
			return nil, err
		}
		chs = append(chs, store)
	}
	return chs, nil
}
