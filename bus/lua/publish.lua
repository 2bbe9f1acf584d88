-- Publishes one notice, records it in its channel's history, and answers
-- how many live subscriptions, across every sub instance, read its channel
-- when it went out.
--
-- KEYS[1] the channel's count key   (wire.Channel.CountKey)
-- KEYS[2] the channel's history     (wire.Channel.HistoryKey), a stream
-- KEYS[3] the history's meta        (wire.Channel.MetaKey), a hash:
--         e = epoch, last = id of the last notice appended,
--         trim = the largest id ever trimmed away
-- ARGV[1] the channel
-- ARGV[2] the encoded message (wire.Message.Encode)
-- ARGV[3] history size, notices kept per channel (0: history off)
-- ARGV[4] history age, milliseconds
-- ARGV[5] the meta's time to live, milliseconds
-- ARGV[6] an epoch to use if the history has none (a fresh random name)
--
-- Returns {receivers} with history off, else {receivers, id, epoch}; the
-- PUBLISHed payload then carries "p":<id>,"e":<epoch> right after its
-- opening brace. Counting, recording and publishing are one atomic step:
-- nothing is published unrecorded or recorded unpublished.
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

local size = tonumber(ARGV[3])
if size <= 0 then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
  return {n}
end

local ttl = tonumber(ARGV[4])
local meta = redis.call('HMGET', KEYS[3], 'e', 'trim', 'last')
local epoch, trim, last = meta[1], meta[2], meta[3]
if not epoch then
  epoch = ARGV[6]
  redis.call('HSET', KEYS[3], 'e', epoch)
end

-- The meta keeps the largest id ever removed ("trim"), so that a reader
-- asking for everything after an older id learns that part of it is gone:
-- removed by trimming below, or with the whole stream when it expired.
local function later(a, b) -- a > b for stream ids "ms-seq" (no leading zeros)
  if not b then return true end
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if #am ~= #bm then return #am > #bm end
  if am ~= bm then return am > bm end
  if #as ~= #bs then return #as > #bs end
  return as > bs
end
local cut = nil
local len = redis.call('XLEN', KEYS[2])
if len == 0 and last then
  cut = last -- the stream expired with everything up to last
end
if len >= size then
  -- XADD below trims by size: note the newest id it removes.
  local gone = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', len - size + 1)
  if later(gone[#gone][1], cut) then cut = gone[#gone][1] end
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', size, '*', 'm', ARGV[2])
local minid = string.format('%.0f-0', now - ttl)
local old = redis.call('XREVRANGE', KEYS[2], '(' .. minid, '-', 'COUNT', 1)
if #old > 0 then
  if later(old[1][1], cut) then cut = old[1][1] end
  redis.call('XTRIM', KEYS[2], 'MINID', minid)
end
if cut and later(cut, trim) then
  redis.call('HSET', KEYS[3], 'last', id, 'trim', cut)
else
  redis.call('HSET', KEYS[3], 'last', id)
end
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[5]))

local msg = ARGV[2]
if string.sub(msg, 1, 1) == '{' and #msg >= 2 then
  local rest = string.sub(msg, 2)
  local sep = ','
  if string.match(rest, '^[ \t\r\n]*}') then sep = '' end
  msg = '{"p":"' .. id .. '","e":"' .. epoch .. '"' .. sep .. rest
end
redis.call('PUBLISH', ARGV[1], msg)
return {n, id, epoch}
