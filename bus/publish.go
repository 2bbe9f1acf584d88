package bus

import (
	"context"
	"fmt"

	"github.com/oshirase/oshirase/wire"
)

// Publish implements Publisher: publish.lua sums the live counts and
// PUBLISHes in one atomic step. The script is sent by its SHA and loaded on
// the first NOSCRIPT (a new or restarted Redis).
func (b *Redis) Publish(ctx context.Context, ch wire.Channel, payload []byte) (int, error) {
	n, err := publishScript.Run(ctx, b.cfg.Client, []string{ch.CountKey()}, string(ch), payload).Int()
	if err != nil {
		return 0, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
	}
	return n, nil
}
