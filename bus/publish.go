package bus

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/wire"
)

// MetaTTL is how long a history's meta (its epoch, last id and trim mark)
// lives: ten times the history's age, and at least a week. A publish sets
// it again once an hour has gone since it was last set (not every time:
// one Redis call less per notice), so the meta outlives the last publish
// to its channel by at least MetaTTL less an hour. It outlives the history
// itself, so a reader coming back after the history expired learns that
// notices were lost instead of finding an empty history that looks
// complete.
func MetaTTL(historyTTL time.Duration) time.Duration {
	return max(10*historyTTL, 7*24*time.Hour)
}

// BatchPublisher publishes many notices in one round trip to each Redis
// server, each with its own outcome, and makes retries safe.
type BatchPublisher interface {
	Publisher
	// PublishBatch publishes every notice and answers one Outcome per
	// notice, in order. A notice that fails does not stop the others.
	PublishBatch(ctx context.Context, notices []Notice) []Outcome
}

var _ BatchPublisher = (*Redis)(nil)

// Notice is one publish of a batch.
type Notice struct {
	Channel wire.Channel
	Payload []byte // an encoded wire.Message
	// Idempotency, when set, makes the publish happen at most once for its
	// key within its TTL: a retry publishes nothing and answers the first
	// publish's outcome.
	Idempotency *Idempotency
}

// Idempotency is what the bus keeps of an idempotent publish.
type Idempotency struct {
	// Key is the Redis key that remembers the publish:
	// Channel.IdempotencyKey(publisher, key), in the channel's hash slot.
	Key string
	// Fingerprint says which notice the key was first used for (a digest of
	// its audience and text; required): the key used again with another
	// fingerprint fails with ErrIdempotencyConflict.
	Fingerprint string
	// ID and TS are the message's id and publish time (wire.Message.ID,
	// TS), kept so that a retry answers the first ones.
	ID string
	TS int64
	// TTL is how long the key is remembered. Required (> 0).
	TTL time.Duration
}

// Outcome is what one publish of a batch did.
type Outcome struct {
	Published
	// Repeat is set when the notice's idempotency key had been used for
	// the same notice within its TTL: nothing was published, and
	// Published, ID and TS are the first publish's.
	Repeat bool
	// ID and TS are the message's id and publish time (the first
	// publish's for a Repeat); set only for an idempotent publish.
	ID string
	TS int64
	// Err is why the notice was not published (ErrUnavailable,
	// ErrIdempotencyConflict); the rest is then zero.
	Err error
}

// ErrIdempotencyConflict: an idempotency key was used again, within its
// TTL, for a different notice. Nothing was published.
var ErrIdempotencyConflict = fmt.Errorf("%w: the idempotency key was already used for a different notice", errkind.ErrBadInput)

// Publish implements Publisher: publish.lua sums the live counts, appends
// to the history and PUBLISHes in one atomic step. The script is sent by
// its SHA and loaded on the first NOSCRIPT (a new or restarted Redis).
func (b *Redis) Publish(ctx context.Context, ch wire.Channel, payload []byte) (Published, error) {
	keys, args := b.publishArgs([]Notice{{Channel: ch, Payload: payload}})
	res, err := b.publish.Run(ctx, b.cfg.Client, keys, args...).Slice()
	if err != nil {
		return Published{}, fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
	}
	if len(res) != 1 {
		return Published{}, fmt.Errorf("bus: publish: %d answers from publish.lua for one notice", len(res))
	}
	one, _ := res[0].([]any)
	o := parseOutcome(one, false)
	return o.Published, o.Err
}

// ScriptBatch is the most notices one publish.lua call takes in
// PublishBatch: Redis runs nothing else while a script runs, and 100
// notices with history take it about a millisecond.
const ScriptBatch = 100

// PublishBatch implements BatchPublisher: publish.lua takes up to
// ScriptBatch notices a call, and all the calls go in one pipeline
// (go-redis splits a Cluster client's pipeline per shard, one round trip
// each). On Redis Cluster a call takes only notices of one channel (one
// hash tag, one slot). Each call is atomic, so every notice is counted,
// recorded and published whole or not at all. Calls a Redis without the
// script refused (NOSCRIPT) are sent again with the script's text; they
// had not run. When the pipeline fails (Redis did not answer in time),
// the notices it left without an answer fail with ErrUnavailable — some
// of them may still have gone out, which an idempotency key makes safe to
// retry.
func (b *Redis) PublishBatch(ctx context.Context, notices []Notice) []Outcome {
	out := make([]Outcome, len(notices))
	var calls [][]int // notice indices, one slice per script call
	byTag := map[string]int{}
	_, cluster := any(b.cfg.Client).(*redis.ClusterClient)
	for i, n := range notices {
		if id := n.Idempotency; id != nil && (id.TTL <= 0 || id.Fingerprint == "") {
			out[i].Err = fmt.Errorf("bus: publish: an idempotent publish needs a fingerprint and a positive TTL, got %q and %s", id.Fingerprint, id.TTL)
			continue
		}
		tag := ""
		if cluster {
			tag = string(n.Channel)
		}
		c, ok := byTag[tag]
		if !ok || len(calls[c]) == ScriptBatch {
			c = len(calls)
			calls = append(calls, nil)
			byTag[tag] = c
		}
		calls[c] = append(calls[c], i)
	}
	keys := make([][]string, len(calls))
	args := make([][]any, len(calls))
	group := make([]Notice, 0, ScriptBatch)
	for c, idx := range calls {
		group = group[:0]
		for _, i := range idx {
			group = append(group, notices[i])
		}
		keys[c], args[c] = b.publishArgs(group)
	}
	pending := make([]int, len(calls))
	for c := range pending {
		pending[c] = c
	}
	// The first pass sends the SHA; a second, for NOSCRIPT answers only,
	// sends the script itself.
	for pass := 0; pass < 2 && len(pending) > 0; pass++ {
		pipe := b.cfg.Client.Pipeline()
		cmds := make([]*redis.Cmd, len(pending))
		for j, c := range pending {
			if pass == 0 {
				cmds[j] = b.publish.EvalSha(ctx, pipe, keys[c], args[c]...)
			} else {
				cmds[j] = b.publish.Eval(ctx, pipe, keys[c], args[c]...)
			}
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
		var again []int
		for j, c := range pending {
			res, err := cmds[j].Slice()
			if err == nil && len(res) != len(calls[c]) {
				err = fmt.Errorf("%d answers from publish.lua for %d notices", len(res), len(calls[c]))
			}
			switch {
			case err == nil:
				for k, i := range calls[c] {
					one, _ := res[k].([]any)
					out[i] = parseOutcome(one, notices[i].Idempotency != nil)
				}
			case pass == 0 && redis.HasErrorPrefix(err, "NOSCRIPT"):
				again = append(again, c)
			default:
				for _, i := range calls[c] {
					out[i].Err = fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
				}
			}
		}
		pending = again
	}
	return out
}

// publishArgs are publish.lua's KEYS and ARGV for ns.
func (b *Redis) publishArgs(ns []Notice) ([]string, []any) {
	keys := make([]string, 0, 3*len(ns))
	args := make([]any, 0, 4+3*len(ns))
	epoch := ""
	if b.cfg.HistorySize > 0 {
		epoch = newEpoch()
	}
	args = append(args, b.cfg.HistorySize, b.cfg.HistoryTTL.Milliseconds(), MetaTTL(b.cfg.HistoryTTL).Milliseconds(), epoch)
	for _, n := range ns {
		ch := n.Channel
		keys = append(keys, ch.CountKey(), ch.HistoryKey(), ch.MetaKey())
		if id := n.Idempotency; id != nil {
			keys = append(keys, id.Key)
			args = append(args, string(ch), n.Payload, id.Fingerprint, id.TTL.Milliseconds(), id.ID, id.TS)
		} else {
			args = append(args, string(ch), n.Payload, "")
		}
	}
	return keys, args
}

// parseOutcome reads publish.lua's answer for one notice: {receivers} with history off,
// {receivers, id, epoch} with it on, and for an idempotent publish
// {receivers, id|"", epoch|"", repeat, message id, ts}, or {-1} when the
// key was used for another notice.
func parseOutcome(res []any, idempotent bool) Outcome {
	var o Outcome
	if len(res) == 0 {
		o.Err = errors.New("bus: publish: empty answer from publish.lua")
		return o
	}
	n, _ := res[0].(int64)
	if n < 0 {
		o.Err = ErrIdempotencyConflict
		return o
	}
	o.Receivers = int(n)
	if len(res) >= 3 {
		id, _ := res[1].(string)
		if id != "" {
			o.Pos.Epoch, _ = res[2].(string)
			var err error
			if o.Pos.ID, err = ParseStreamID(id); err != nil {
				return Outcome{Err: err}
			}
		}
	}
	if idempotent && len(res) >= 6 {
		repeat, _ := res[3].(int64)
		o.Repeat = repeat == 1
		o.ID, _ = res[4].(string)
		ts, _ := res[5].(string)
		o.TS, _ = strconv.ParseInt(ts, 10, 64)
	}
	return o
}

// newEpoch names a history that starts (over): 72 random bits, in
// characters that need no escaping in JSON or Redis.
func newEpoch() string {
	var b [9]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
