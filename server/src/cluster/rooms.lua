-- Every room with members on any instance, and how many.
-- KEYS: rooms; ARGV: key prefix
local out = {}
for _, room in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local n = redis.call('ZCARD', ARGV[1] .. '{' .. room .. '}:members')
  if n > 0 then
    table.insert(out, room)
    table.insert(out, n)
  end
end
return out
