-- Reads a channel's newest notices, newest first, and its epoch.
--
-- KEYS[1] the channel's history (wire.Channel.HistoryKey)
-- KEYS[2] the history's meta    (wire.Channel.MetaKey; see publish.lua)
-- ARGV[1] an epoch to give the history if it has none (a fresh random name)
-- ARGV[2] the meta's time to live, milliseconds, if it is created here
-- ARGV[3] the epoch the caller's bound belongs to ("": no bound)
-- ARGV[4] exclusive upper bound, a stream id ("": from the newest)
-- ARGV[5] how many notices at most
-- ARGV[6] the history size: only the newest this many notices are history
--   (the stream may hold a few more, trimmed in batches: publish.lua)
--
-- Returns {epoch, entry, entry, ...} (XREVRANGE's entries), or the error
-- EXPIRED when the bound is from another epoch. The epoch is created when
-- missing, so that every position handed out names one: a Redis that loses
-- its data later loses the epoch with it, and the position is then refused
-- instead of silently read against a new history.
if redis.call('HSETNX', KEYS[2], 'e', ARGV[1]) == 1 then
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
end
local epoch = redis.call('HGET', KEYS[2], 'e')
if ARGV[3] ~= '' and epoch ~= ARGV[3] then
  return redis.error_reply('EXPIRED history epoch')
end
local top = '+'
if ARGV[4] ~= '' then
  top = '(' .. ARGV[4]
end
local bottom = '-'
local size = tonumber(ARGV[6])
local len = redis.call('XLEN', KEYS[1])
if len > size then
  local over = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - size)
  bottom = '(' .. over[#over][1]
end
local entries = redis.call('XREVRANGE', KEYS[1], top, bottom, 'COUNT', tonumber(ARGV[5]))
table.insert(entries, 1, epoch)
return entries
