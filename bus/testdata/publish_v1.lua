-- publish.lua as it was before the meta kept n, first, at and x (commit
-- 6711aa0): history_meta_test.go runs it beside the current script, as a
-- pub of the earlier release would during a rolling deploy.
--
-- Publishes notices, records each in its channel's history, and answers
-- for each how many live subscriptions, across every sub instance, read
-- its channel when it went out. One call takes one notice or many (a
-- batch, one script instead of one per notice: all of a call's keys must
-- then be in one Redis Cluster slot, or on one server).
--
-- ARGV[1] history size, notices kept per channel (0: history off)
-- ARGV[2] history age, milliseconds
-- ARGV[3] the meta's time to live, milliseconds
-- then seven ARGV per notice, from ARGV[4]:
--   channel, the encoded message (wire.Message.Encode), an epoch to use if
--   the history has none (a fresh random name), the notice's fingerprint
--   (its audience and text, digested; '' for a publish without an
--   idempotency key), how long its idempotency key is remembered
--   (milliseconds), the message's id and its publish time (Unix ms)
-- and per notice, in order, its keys:
--   the channel's count key (wire.Channel.CountKey); its history
--   (HistoryKey), a stream; the history's meta (MetaKey), a hash: e =
--   epoch, last = id of the last notice appended, trim = the largest id
--   ever trimmed away; and, when it has a fingerprint, its idempotency key
--   (IdempotencyKey), a hash in the channel's slot: f = fingerprint, n =
--   receivers, p = stream id, e = epoch, id = message id, ts = publish time
--
-- Returns one answer per notice: {receivers} with history off, else
-- {receivers, id, epoch}; the PUBLISHed payload then carries
-- "p":<id>,"e":<epoch> right after its opening brace. Counting, recording
-- and publishing are one atomic step: nothing is published unrecorded or
-- recorded unpublished.
--
-- A notice with an idempotency key answers {receivers, id|'', epoch|'',
-- repeat, message id, ts}. When its key is already there with the same
-- fingerprint, nothing is published and the first publish's answer comes
-- back with repeat = 1; with another fingerprint, {-1}. Deciding and
-- publishing are one atomic step too: of any number of concurrent calls
-- with one key, exactly one publishes.
local size = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local metaTTL = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

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

-- receivers sums the unexpired live counts of count key k, dropping the
-- expired ones (a crashed sub instance's).
local function receivers(k)
  local all = redis.call('HGETALL', k)
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
      redis.call('HDEL', k, all[i])
    end
  end
  return n
end

-- record appends payload to history hk (meta mk), trims it by size and
-- age, and answers its id and the history's epoch.
local function record(hk, mk, payload, newEpoch)
  local meta = redis.call('HMGET', mk, 'e', 'trim', 'last')
  local epoch, trim, last = meta[1], meta[2], meta[3]
  if not epoch then
    epoch = newEpoch
    redis.call('HSET', mk, 'e', epoch)
  end
  local cut = nil
  local len = redis.call('XLEN', hk)
  if len == 0 and last then
    cut = last -- the stream expired with everything up to last
  end
  if len >= size then
    -- XADD below trims by size: note the newest id it removes.
    local gone = redis.call('XRANGE', hk, '-', '+', 'COUNT', len - size + 1)
    if later(gone[#gone][1], cut) then cut = gone[#gone][1] end
  end
  local id = redis.call('XADD', hk, 'MAXLEN', size, '*', 'm', payload)
  local minid = string.format('%.0f-0', now - ttl)
  local old = redis.call('XREVRANGE', hk, '(' .. minid, '-', 'COUNT', 1)
  if #old > 0 then
    if later(old[1][1], cut) then cut = old[1][1] end
    redis.call('XTRIM', hk, 'MINID', minid)
  end
  if cut and later(cut, trim) then
    redis.call('HSET', mk, 'last', id, 'trim', cut)
  else
    redis.call('HSET', mk, 'last', id)
  end
  redis.call('PEXPIRE', hk, ttl)
  redis.call('PEXPIRE', mk, metaTTL)
  return id, epoch
end

-- publish publishes one notice: a is its first ARGV, k its first KEY.
local function publish(a, k)
  local channel, payload, newEpoch, fp = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local idem = nil
  if fp ~= '' then
    idem = KEYS[k + 3]
    local prev = redis.call('HMGET', idem, 'f', 'n', 'p', 'e', 'id', 'ts')
    if prev[1] then
      if prev[1] ~= fp then return {-1} end
      return {tonumber(prev[2]), prev[3], prev[4], 1, prev[5], prev[6]}
    end
  end
  local n = receivers(KEYS[k])
  local id, epoch = nil, nil
  if size > 0 then
    id, epoch = record(KEYS[k + 1], KEYS[k + 2], payload, newEpoch)
    if string.sub(payload, 1, 1) == '{' and #payload >= 2 then
      local rest = string.sub(payload, 2)
      local sep = ','
      if string.match(rest, '^[ \t\r\n]*}') then sep = '' end
      payload = '{"p":"' .. id .. '","e":"' .. epoch .. '"' .. sep .. rest
    end
  end
  redis.call('PUBLISH', channel, payload)
  if not idem then
    if id then return {n, id, epoch} end
    return {n}
  end
  id, epoch = id or '', epoch or ''
  redis.call('HSET', idem, 'f', fp, 'n', n, 'p', id, 'e', epoch, 'id', ARGV[a + 5], 'ts', ARGV[a + 6])
  redis.call('PEXPIRE', idem, tonumber(ARGV[a + 4]))
  return {n, id, epoch, 0, ARGV[a + 5], ARGV[a + 6]}
end

local out = {}
local k = 1
for a = 4, #ARGV, 7 do
  out[#out + 1] = publish(a, k)
  k = k + 3
  if ARGV[a + 3] ~= '' then k = k + 1 end
end
return out
