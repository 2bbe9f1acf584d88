package bus

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	"github.com/oshirase/oshirase/wire"
)

// MetaTTL is how long a history's meta (its epoch, last id and trim mark)
// outlives the last publish to its channel: ten times the history's age,
// and at least a week. It outlives the history itself, so a reader coming
// back after the history expired learns that notices were lost instead of
// finding an empty history that looks complete.
func MetaTTL(historyTTL time.Duration) time.Duration {
	return max(10*historyTTL, 7*24*time.Hour)
}

// Publish implements Publisher: publish.lua sums the live counts, appends
// to the history and PUBLISHes in one atomic step. The script is sent by
// its SHA and loaded on the first NOSCRIPT (a new or restarted Redis).
func (b *Redis) Publish(ctx context.Context, ch wire.Channel, payload []byte) (Published, error) {
	epoch := ""
	if b.cfg.HistorySize > 0 {
		epoch = newEpoch()
	}
	res, err := publishScript.Run(ctx, b.cfg.Client,
		[]string{ch.CountKey(), ch.HistoryKey(), ch.MetaKey()},
		string(ch), payload, b.cfg.HistorySize, b.cfg.HistoryTTL.Milliseconds(), MetaTTL(b.cfg.HistoryTTL).Milliseconds(), epoch,
	).Slice()
	if err != nil {
		return Published{}, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
	}
	var p Published
	if len(res) > 0 {
		n, _ := res[0].(int64)
		p.Receivers = int(n)
	}
	if len(res) == 3 {
		id, _ := res[1].(string)
		p.Pos.Epoch, _ = res[2].(string)
		if p.Pos.ID, err = ParseStreamID(id); err != nil {
			return Published{}, err
		}
	}
	return p, nil
}

// newEpoch names a history that starts (over): 72 random bits, in
// characters that need no escaping in JSON or Redis.
func newEpoch() string {
	var b [9]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
