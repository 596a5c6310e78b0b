-- Moves the roll-up cursor to an hour, if the caller still holds the roll-up lock. Forward only: every
-- hour up to the cursor is folded, which stays true whoever set it last.
-- KEYS: 1 the roll-up fence of the cursor's slot, 2 the cursor
-- ARGV: 1 fencing number, 2 the hour just folded
-- Returns 1 when moved, 0 when it was already at or past the hour; the error FENCED.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED roll-up fence ' .. ARGV[1] .. ' is no longer the holder')
end
local cur = tonumber(redis.call('GET', KEYS[2]))
if cur and cur >= tonumber(ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
