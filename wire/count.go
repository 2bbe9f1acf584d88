package wire

import "github.com/redis/go-redis/v9"

// How receivedUsers stays true with one Pub/Sub connection per sub instance:
// each sub instance writes, into the channel's CountKey hash, the field
// <instance id> = "<live subscriptions>:<expiry, Unix ms>", and rewrites it
// well before it expires. pub's PublishScript sums the fields that have not
// expired and PUBLISHes in the same atomic step, so the number it answers is
// the number of subscriptions that were live when the notice went out. A
// crashed instance's field simply expires. Both scripts read Redis's clock,
// never the callers', so skew between machines does not matter.

// SetCountScript records one instance's count for one channel.
//
//	KEYS[1] channel's CountKey
//	ARGV[1] instance id
//	ARGV[2] live subscriptions (0 deletes the field)
//	ARGV[3] time to live, milliseconds
var SetCountScript = redis.NewScript(`
local n = tonumber(ARGV[2])
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], n .. ':' .. (now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl)
return n
`)

// PublishScript publishes a message and answers how many live
// subscriptions, across every sub instance, read its channel.
//
//	KEYS[1] channel's CountKey
//	ARGV[1] channel
//	ARGV[2] encoded message
var PublishScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  local v = all[i + 1]
  local sep = string.find(v, ':', 1, true)
  local c, exp = 0, 0
  if sep then
    c = tonumber(string.sub(v, 1, sep - 1)) or 0
    exp = tonumber(string.sub(v, sep + 1)) or 0
  end
  if exp > now then
    n = n + c
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return n
`)
