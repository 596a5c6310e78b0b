-- Frees one key of a folded hour in the live index, if the caller still holds the roll-up lock: the whole
-- key, or one member of a set.
-- KEYS: 1 the roll-up fence of the key's slot, 2 the key
-- ARGV: 1 fencing number, 2 the set member to remove (absent: remove the key)
-- Returns what UNLINK or SREM returned; the error FENCED.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED roll-up fence ' .. ARGV[1] .. ' is no longer the holder')
end
if ARGV[2] then
  return redis.call('SREM', KEYS[2], ARGV[2])
end
return redis.call('UNLINK', KEYS[2])
