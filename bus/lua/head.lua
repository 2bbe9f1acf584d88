-- Answers where a channel's history stands: its epoch and the id of its
-- last notice ("0-0": none yet).
--
-- KEYS[1] the history's meta (wire.Channel.MetaKey; see publish.lua)
-- ARGV[1] an epoch to give the history if it has none (a fresh random name)
-- ARGV[2] the meta's time to live, milliseconds, if it is created here
--
-- Returns {epoch, last}. The epoch is created when missing (see recent.lua).
if redis.call('HSETNX', KEYS[1], 'e', ARGV[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
local meta = redis.call('HMGET', KEYS[1], 'e', 'last')
return {meta[1], meta[2] or '0-0'}
