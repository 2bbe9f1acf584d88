-- Records one sub instance's live-subscription count for one channel.
--
-- KEYS[1] the channel's count key (wire.Channel.CountKey)
-- ARGV[1] instance id
-- ARGV[2] live subscriptions on this instance (0 deletes the field)
-- ARGV[3] time to live, milliseconds
--
-- The field's value is "<count>:<expiry, Unix ms>", read from Redis's clock
-- so that skew between machines does not matter. Returns the count written.
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
