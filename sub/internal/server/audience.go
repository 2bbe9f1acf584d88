package server

import (
	"context"
	"fmt"

	"github.com/oshirase/oshirase/wire"
)

// DemoTenant is the one tenant of AUTH_MODE=none.
const DemoTenant = "default"

// TrustingAudience is the demo access policy of the original design: the
// userName argument is believed, and it reads that user's personal channel.
type TrustingAudience struct{}

// Channels implements graph.Audience.
func (TrustingAudience) Channels(_ context.Context, userName string) ([]wire.Channel, error) {
	ch, err := wire.PersonChannel(DemoTenant, userName)
	if err != nil {
		return nil, fmt.Errorf("userName: %w", err)
	}
	return []wire.Channel{ch}, nil
}
