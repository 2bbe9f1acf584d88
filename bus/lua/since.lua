-- Reads a channel's history after a position, oldest first.
--
-- KEYS[1] the channel's history (wire.Channel.HistoryKey)
-- KEYS[2] the history's meta    (wire.Channel.MetaKey; see publish.lua)
-- ARGV[1] the position: everything up to and including this id was seen
-- ARGV[2] the position's epoch
-- ARGV[3] the history size: only the newest this many notices are history
--   (the stream may hold a few more, trimmed in batches: publish.lua)
--
-- Returns {epoch, entry, entry, ...} (XRANGE's entries), or the error
-- EXPIRED when the history cannot say what came after the position: it is
-- from another epoch, or notices after it were trimmed away or are older
-- than the newest size, or the history (not its meta) expired although
-- notices came after it.
local function later(a, b) -- a > b for stream ids "ms-seq" (no leading zeros)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if #am ~= #bm then return #am > #bm end
  if am ~= bm then return am > bm end
  if #as ~= #bs then return #as > #bs end
  return as > bs
end
local meta = redis.call('HMGET', KEYS[2], 'e', 'trim', 'last')
local epoch, trim, last = meta[1], meta[2], meta[3]
if not epoch or epoch ~= ARGV[2] then
  return redis.error_reply('EXPIRED history epoch')
end
if trim and later(trim, ARGV[1]) then
  return redis.error_reply('EXPIRED history trimmed')
end
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')
if #entries > tonumber(ARGV[3]) then
  -- Some of them are older than the newest size: trimmed, for a reader.
  return redis.error_reply('EXPIRED history trimmed')
end
if #entries == 0 and last and later(last, ARGV[1]) then
  return redis.error_reply('EXPIRED history expired')
end
table.insert(entries, 1, epoch)
return entries
