-- Removes the members of instances whose heartbeat expired (or of one
-- named instance, at its shutdown) from every room, and tells the others.
-- KEYS: alive, rooms
-- ARGV: presence limit, node to remove ('' for every expired one), key prefix
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = {}
local any = false
if ARGV[2] ~= '' then
  dead[ARGV[2]] = true
  any = true
  redis.call('ZREM', KEYS[1], ARGV[2])
else
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
    dead[node] = true
    any = true
    redis.call('ZREM', KEYS[1], node)
  end
end
if not any then
  return 0
end
local limit = tonumber(ARGV[1])
local removed = 0
for _, room in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local key = ARGV[3] .. '{' .. room .. '}:members'
  local gone = {}
  for _, entry in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local id, node, name = string.match(entry, '^(%d+) (%d+) (.*)$')
    if node and dead[node] then
      table.insert(gone, {entry, id, name})
    end
  end
  for _, g in ipairs(gone) do
    redis.call('ZREM', key, g[1])
  end
  local after = redis.call('ZCARD', key)
  if after == 0 then
    redis.call('SREM', KEYS[2], room)
  else
    for _, g in ipairs(gone) do
      if after < limit then
        redis.call('PUBLISH', ARGV[3] .. '{' .. room .. '}', 'l' .. g[2] .. ' disconnected ' .. g[3])
      end
    end
  end
  removed = removed + #gone
end
return removed
