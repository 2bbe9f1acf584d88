package bus

import (
	_ "embed"
	"strings"

	"github.com/redis/go-redis/v9"
)

// How receivedUsers stays true with one Pub/Sub connection per sub instance:
// each sub instance writes, into the channel's count hash, the field
// <instance id> = "<live subscriptions>:<expiry, Unix ms>", and rewrites it
// well before it expires (set_count.lua). publish.lua sums the fields that
// have not expired and PUBLISHes in the same atomic step, so the number it
// answers is the number of subscriptions that were live when the notice went
// out. A crashed instance's field simply expires.
//
// How history stays exact: publish.lua appends each notice to its channel's
// stream in the same step as its PUBLISH, and keeps beside it a meta hash
// with the history's epoch, the last id, and the largest id it ever removed
// (trimmed by size or age, or lost with the expired stream). since.lua
// compares a reader's position with that mark, so it answers either every
// notice after the position or ErrCursorExpired, never a history with a hole
// in it. A history is trimmed by size in batches (a stream holds up to a
// quarter more than HISTORY_SIZE; publish.lua says why), and the readers
// take only its newest HISTORY_SIZE notices as history, a position before
// them as expired. recent.lua and head.lua create the epoch when a channel has none,
// so every position handed out names one. The meta also keeps the stream's
// length and oldest id, so that most publishes append without asking the
// stream anything (publish.lua says when they are trusted).

var (
	//go:embed lua/set_count.lua
	setCountLua string
	//go:embed lua/publish.lua
	publishLua string
	//go:embed lua/since.lua
	sinceLua string
	//go:embed lua/recent.lua
	recentLua string
	//go:embed lua/head.lua
	headLua string

	setCountScript = redis.NewScript(setCountLua)
	publishScript  = redis.NewScript(publishLua)
	// On a cluster the notice goes out with SPUBLISH: it travels only
	// within the shard that owns its channel's slot (where its count and
	// history keys are too).
	publishShardedScript = redis.NewScript(strings.ReplaceAll(publishLua, "redis.call('PUBLISH'", "redis.call('SPUBLISH'"))
	sinceScript          = redis.NewScript(sinceLua)
	recentScript         = redis.NewScript(recentLua)
	headScript           = redis.NewScript(headLua)
)
