package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/wire"
)

// Codec is a peer's Redis contract: where a user's notices go and how
// one is encoded.
type Codec interface {
	Channel(user string) (string, error)
	Encode(text string, now time.Time) ([]byte, error)
}

// WireCodec is oshirase's own contract, from the wire package (the bare
// peer reads it too).
type WireCodec struct{ Tenant string }

// Company stands for "every user of the tenant" where a user is expected:
// WireCodec maps it to the tenant's company channel. It cannot be a user
// name (control characters are refused), so it never collides with one.
const Company = "\x00company"

func (c WireCodec) Channel(user string) (string, error) {
	if user == Company {
		ch, err := wire.NewChannel(c.Tenant, wire.ScopeCompany, "")
		return string(ch), err
	}
	ch, err := wire.PersonChannel(c.Tenant, user)
	return string(ch), err
}

func (WireCodec) Encode(text string, now time.Time) ([]byte, error) {
	m, err := wire.NewMessage(text, wire.ScopePerson, now)
	if err != nil {
		return nil, err
	}
	return m.Encode()
}

// Redis publishes straight into Redis with PUBLISH, pipelined per batch.
// The count it reports is Redis's: subscribed Redis connections (one per
// server instance), not subscriptions.
type Redis struct {
	rdb   *redis.Client
	codec Codec
	batch int
}

// NewRedis connects to addr ("host:port" or "redis://…").
func NewRedis(addr string, codec Codec, batch, poolSize int) (*Redis, error) {
	opt, err := redis.ParseURL(addr)
	if err != nil {
		opt = &redis.Options{Addr: addr}
	}
	opt.PoolSize = max(poolSize, 4)
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("publish: redis %s: %w", addr, err)
	}
	return &Redis{rdb: rdb, codec: codec, batch: max(batch, 1)}, nil
}

func (r *Redis) MaxBatch() int { return r.batch }
func (r *Redis) Close() error  { return r.rdb.Close() }

// Client exposes the Redis client (for PUBSUB counts and the like).
func (r *Redis) Client() *redis.Client { return r.rdb }

func (r *Redis) Publish(ctx context.Context, ns []Notice) (int64, int, error) {
	now := time.Now()
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, 0, len(ns))
	for _, n := range ns {
		ch, err := r.codec.Channel(n.User)
		if err != nil {
			return 0, len(ns), err
		}
		msg, err := r.codec.Encode(n.Text, now)
		if err != nil {
			return 0, len(ns), err
		}
		cmds = append(cmds, pipe.Publish(ctx, ch, msg))
	}
	_, err := pipe.Exec(ctx)
	var got int64
	failed := 0
	for _, c := range cmds {
		if c.Err() != nil {
			failed++
			continue
		}
		got += c.Val()
	}
	return got, failed, err
}

// NodeCodec is the Node peer's contract (see peers/node/server.js): its own
// channel prefix and a plain JSON notice, so it never reads oshirase's
// channels.
type NodeCodec struct{}

func (NodeCodec) Channel(user string) (string, error) { return "nodepeer:notif:" + user, nil }

func (NodeCodec) Encode(text string, now time.Time) ([]byte, error) {
	return json.Marshal(map[string]any{"id": strconv.FormatInt(now.UnixNano(), 36), "text": text, "timestamp": now.Unix()})
}
