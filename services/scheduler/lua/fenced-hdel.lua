-- Deletes fields of a hash (DID table entries of accounts without data, pending marks of the prune's
-- sweep), if the caller still holds its lock: a runner that lost it deletes nothing. The fence is the
-- roll-up's (forget step) or the prune's (table sweep): whichever the caller's lock hands out.
-- KEYS: 1 the caller's fence of the hash's slot, 2 the hash
-- ARGV: 1 fencing number, then the fields
-- Returns how many fields were deleted; the error FENCED.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED fence ' .. ARGV[1] .. ' is no longer the holder')
end
return redis.call('HDEL', KEYS[2], unpack(ARGV, 2))
