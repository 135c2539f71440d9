-- Marks an instance alive until now + TTL (Redis's clock, one for all
-- instances). Returns 1 if Redis knew it, 0 if not: Redis lost its data
-- (or reaped this instance), and the instance must register its members
-- again.
-- KEYS: alive (zset: member node, score expiry in ms)
-- ARGV: node, presence TTL (ms)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if known then
  return 1
end
return 0
