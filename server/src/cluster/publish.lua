-- Gives a post the room's next offset, keeps it in the room's capped
-- stream and publishes it to every instance, in one atomic step.
-- KEYS: meta (hash: epoch, top), log (stream), members (zset)
-- ARGV: proposed epoch, history size, history TTL (ms), channel, post,
--       '1' to publish only if the room has members anywhere
local members = redis.call('ZCARD', KEYS[3])
if ARGV[6] == '1' and members == 0 then
  return {'', 0, 0}
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  -- A new room, or its history expired or was lost: a new epoch.
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
end
local top = redis.call('HINCRBY', KEYS[1], 'top', 1)
local size = tonumber(ARGV[2])
if size > 0 then
  -- Exact trimming (no '~'): --history-size is a promise.
  redis.call('XADD', KEYS[2], 'MAXLEN', size, top .. '-1', 'p', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], 'm' .. epoch .. ' ' .. top .. ' ' .. ARGV[5])
return {epoch, top, members}
