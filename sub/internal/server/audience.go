package server

import (
	"context"

	"github.com/oshirase/oshirase/wire"
)

// DemoTenant is the one tenant of AUTH_MODE=none.
const DemoTenant = "default"

// TrustingAudience is the demo access policy of the original design: the
// userName argument is believed, and it reads that user's personal channel.
type TrustingAudience struct{}

// Channels implements graph.Audience.
func (TrustingAudience) Channels(_ context.Context, userName string) ([]wire.Channel, error) {
	if err := wire.ValidateName("userName", userName, 0); err != nil {
		return nil, err
	}
	ch, err := wire.PersonChannel(DemoTenant, userName)
	if err != nil {
		return nil, err
	}
	return []wire.Channel{ch}, nil
}
