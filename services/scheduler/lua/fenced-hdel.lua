-- Deletes fields of a hash (DID table entries of forgotten accounts), if the caller still holds the
-- roll-up lock: a runner that lost it deletes nothing.
-- KEYS: 1 the roll-up fence of the hash's slot, 2 the hash
-- ARGV: 1 fencing number, then the fields
-- Returns how many fields were deleted; the error FENCED.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED roll-up fence ' .. ARGV[1] .. ' is no longer the holder')
end
return redis.call('HDEL', KEYS[2], unpack(ARGV, 2))
