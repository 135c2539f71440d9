-- Adds a member to a room's presence and answers where the room's
-- history stands, with the messages after `since` if it holds them all.
-- KEYS: meta, log, members (zset: score id, member "id node name"), rooms (set)
-- ARGV: proposed epoch, history TTL (ms), id, node, name, channel, room,
--       presence limit, since epoch ('' for none), since offset
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local top = tonumber(redis.call('HGET', KEYS[1], 'top'))
local limit = tonumber(ARGV[8])
local before = redis.call('ZCARD', KEYS[3])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5])
redis.call('SADD', KEYS[4], ARGV[7])
if before < limit then
  redis.call('PUBLISH', ARGV[6], 'j' .. ARGV[3] .. ' ' .. ARGV[5])
end
local list = {}
if limit > 0 then
  list = redis.call('ZRANGE', KEYS[3], 0, limit - 1)
end
-- -1: no since; 0: not recovered; 1: recovered (with `replay`).
local recovered = -1
local replay = {}
if ARGV[9] ~= '' then
  local since = tonumber(ARGV[10])
  if ARGV[9] ~= epoch or since > top then
    recovered = 0
  elseif since == top then
    recovered = 1
  else
    local first = (since + 1) .. '-1'
    local entries = redis.call('XRANGE', KEYS[2], first, '+')
    if #entries > 0 and entries[1][1] == first then
      recovered = 1
      replay = entries
    else
      recovered = 0
    end
  end
end
return {epoch, top, before + 1, list, recovered, replay}
