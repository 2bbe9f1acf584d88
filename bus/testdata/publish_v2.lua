-- Publishes notices, records each in its channel's history, and answers
-- for each how many live subscriptions, across every sub instance, read
-- its channel when it went out. One call takes one notice or many (a
-- batch, one script instead of one per notice: all of a call's keys must
-- then be in one Redis Cluster slot, or on one server).
--
-- ARGV[1] history size, notices kept per channel (0: history off)
-- ARGV[2] history age, milliseconds
-- ARGV[3] the meta's time to live, milliseconds
-- ARGV[4] an epoch for each history of the call that has none (a fresh
--   random name: histories started in one call may share it, an epoch
--   only has to differ between one channel's histories)
-- then per notice, from ARGV[5]: its channel, the encoded message
-- (wire.Message.Encode) and its fingerprint (its audience and text,
-- digested; '' for a publish without an idempotency key); with a
-- fingerprint, three more: how long its idempotency key is remembered
-- (milliseconds), the message's id and its publish time (Unix ms)
-- and per notice, in order, its keys:
--   the channel's count key (wire.Channel.CountKey); its history
--   (HistoryKey), a stream; the history's meta (MetaKey), a hash: e =
--   epoch, last = id of the last notice appended, trim = the largest id
--   ever trimmed away (what readers look at), and n, first, at, x (what
--   record below keeps for itself); and, when it has a fingerprint, its idempotency key
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
local newEpoch = ARGV[4]
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

-- Notices older than this are trimmed (XTRIM MINID): the same bound for
-- every notice of the call.
local oldest = now - ttl
local minid = string.format('%.0f-0', oldest)
-- The meta's time to live is set again once less than this is left of
-- it, not on every publish: the meta still outlives the last publish by
-- at least metaTTL - refresh, far longer than the history (MetaTTL).
local refresh = math.min(3600000, math.floor(metaTTL / 2))

-- record appends payload to history hk (meta mk), trims it by size and
-- age, and answers its id and the history's epoch.
--
-- The meta also keeps what trimming needs to know of the stream, so
-- that most publishes do not ask it: n = its length, first = its oldest
-- id, at = the last id when n and first were written. They are trusted
-- only while at equals last and the stream exists (PEXPIRE, which also
-- sets the stream's age, says so): a publish by an older script that
-- does not keep them moves last, and a stream lost on its own (expired,
-- evicted) makes PEXPIRE answer 0; either way they are read again.
local function record(hk, mk, payload)
  local meta = redis.call('HMGET', mk, 'e', 'trim', 'last', 'n', 'first', 'at', 'x')
  local epoch, trim, last, n, first, at, x = meta[1], meta[2], meta[3], meta[4], meta[5], meta[6], meta[7]
  local set = {'last', '', 'n', 0, 'first', '', 'at', ''}
  if not epoch then
    epoch = newEpoch
    set[#set + 1], set[#set + 2] = 'e', epoch
  end
  local cut = nil
  local len = 0
  local existed = redis.call('PEXPIRE', hk, ttl) == 1
  if existed and at and at == last and n and first and first ~= '' then
    len = tonumber(n)
  else
    if existed then len = redis.call('XLEN', hk) end
    first = nil
    if len > 0 then
      first = redis.call('XRANGE', hk, '-', '+', 'COUNT', 1)[1][1]
    elseif last then
      cut = last -- the stream expired with everything up to last
    end
  end
  if len >= size then
    -- XADD below trims by size: note the newest id it removes, and the
    -- oldest it keeps.
    local k = len - size + 1
    local gone = redis.call('XRANGE', hk, '-', '+', 'COUNT', k + 1)
    if later(gone[k][1], cut) then cut = gone[k][1] end
    first = gone[k + 1] and gone[k + 1][1] or nil
    len = size - 1
  end
  local id = redis.call('XADD', hk, 'MAXLEN', size, '*', 'm', payload)
  len = len + 1
  if not first then first = id end
  if not existed then redis.call('PEXPIRE', hk, ttl) end
  if tonumber(string.match(first, '^(%d+)-')) < oldest then
    -- The oldest notice is past the age: trim every one that is.
    local old = redis.call('XREVRANGE', hk, '(' .. minid, '-', 'COUNT', 1)
    if #old > 0 then
      if later(old[1][1], cut) then cut = old[1][1] end
      len = len - redis.call('XTRIM', hk, 'MINID', minid)
    end
    -- The oldest kept (none only if the clock went back past the age:
    -- '' makes the next publish read the stream again).
    local kept = redis.call('XRANGE', hk, '-', '+', 'COUNT', 1)
    first = kept[1] and kept[1][1] or ''
  end
  set[2], set[4], set[6], set[8] = id, len, first, id
  if cut and later(cut, trim) then
    set[#set + 1], set[#set + 2] = 'trim', cut
  end
  local exp = tonumber(x)
  if not exp or exp - now < metaTTL - refresh then
    set[#set + 1], set[#set + 2] = 'x', string.format('%.0f', now + metaTTL)
    redis.call('HSET', mk, unpack(set))
    redis.call('PEXPIRE', mk, metaTTL)
  else
    redis.call('HSET', mk, unpack(set))
  end
  return id, epoch
end

-- publish publishes one notice: a is its first ARGV, k its first KEY.
local function publish(a, k)
  local channel, payload, fp = ARGV[a], ARGV[a + 1], ARGV[a + 2]
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
    id, epoch = record(KEYS[k + 1], KEYS[k + 2], payload)
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
  redis.call('HSET', idem, 'f', fp, 'n', n, 'p', id, 'e', epoch, 'id', ARGV[a + 4], 'ts', ARGV[a + 5])
  redis.call('PEXPIRE', idem, tonumber(ARGV[a + 3]))
  return {n, id, epoch, 0, ARGV[a + 4], ARGV[a + 5]}
end

local out = {}
local a, k = 5, 1
while a <= #ARGV do
  out[#out + 1] = publish(a, k)
  if ARGV[a + 2] == '' then
    a, k = a + 3, k + 3
  else
    a, k = a + 6, k + 4
  end
end
return out
