-- Writes fields of a hash, if the caller still holds its lock: DID table entries of the accounts an hour's
-- fold names (a stale roll-up runner must not write back the entry of an account the forget step has
-- reclaimed since it read the hour), and the prune sweep's pending marks.
-- KEYS: 1 the caller's fence of the hash's slot, 2 the hash
-- ARGV: 1 fencing number, then field, value, field, value...
-- Returns what HSET returned; the error FENCED.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED fence ' .. ARGV[1] .. ' is no longer the holder')
end
return redis.call('HSET', KEYS[2], unpack(ARGV, 2))
