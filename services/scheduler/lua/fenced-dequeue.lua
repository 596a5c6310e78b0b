-- Removes an account from the forget queue once it is forgotten, if its score is still the one the caller
-- read (a purge that came meanwhile keeps it queued for the next run) and the caller still holds the
-- roll-up lock.
-- KEYS: 1 the roll-up fence of the queue's slot, 2 the forget queue
-- ARGV: 1 fencing number, 2 the member, 3 its score as read (as ZRANGE WITHSCORES formats it)
-- Returns 1 removed, 0 absent or scored anew; the error FENCED.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED roll-up fence ' .. ARGV[1] .. ' is no longer the holder')
end
if redis.call('ZSCORE', KEYS[2], ARGV[2]) ~= ARGV[3] then
  return 0
end
return redis.call('ZREM', KEYS[2], ARGV[2])
