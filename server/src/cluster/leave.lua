-- Removes a member from a room's presence and tells every instance.
-- KEYS: members, rooms
-- ARGV: id, channel, room, presence limit, reason, name
local removed = redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
if removed == 0 then
  return 0
end
local after = redis.call('ZCARD', KEYS[1])
if after == 0 then
  redis.call('SREM', KEYS[2], ARGV[3])
elseif after < tonumber(ARGV[4]) then
  redis.call('PUBLISH', ARGV[2], 'l' .. ARGV[1] .. ' ' .. ARGV[5] .. ' ' .. ARGV[6])
end
return 1
