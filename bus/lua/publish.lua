-- Publishes one notice and answers how many live subscriptions, across
-- every sub instance, read its channel when it went out.
--
-- KEYS[1] the channel's count key (wire.Channel.CountKey)
-- ARGV[1] the channel
-- ARGV[2] the encoded message (wire.Message.Encode)
--
-- Sums the fields of the count hash that have not expired (set_count.lua)
-- and drops the ones that have, then PUBLISHes, all in one atomic step.
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
