package bus

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// How receivedUsers stays true with one Pub/Sub connection per sub instance:
// each sub instance writes, into the channel's count hash, the field
// <instance id> = "<live subscriptions>:<expiry, Unix ms>", and rewrites it
// well before it expires (set_count.lua). publish.lua sums the fields that
// have not expired and PUBLISHes in the same atomic step, so the number it
// answers is the number of subscriptions that were live when the notice went
// out. A crashed instance's field simply expires.

var (
	//go:embed lua/set_count.lua
	setCountLua string
	//go:embed lua/publish.lua
	publishLua string

	setCountScript = redis.NewScript(setCountLua)
	publishScript  = redis.NewScript(publishLua)
)
