-- Where a room's history stands, and its messages from one offset to
-- another (for an instance that missed some on its subscription).
-- KEYS: meta, log; ARGV: first offset, last offset ('+' for the latest)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  return {'', 0, {}}
end
local top = tonumber(redis.call('HGET', KEYS[1], 'top'))
local last = ARGV[2]
if last ~= '+' then
  last = last .. '-1'
end
return {epoch, top, redis.call('XRANGE', KEYS[2], ARGV[1] .. '-1', last)}
