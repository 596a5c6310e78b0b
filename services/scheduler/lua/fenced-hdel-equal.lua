-- Deletes hash fields that still hold the value read, if the caller still holds its lock: the DID table
-- entries the prune's sweep found bad (a value that is no DID, or a DID whose id is not the field). A
-- writer that has since put the right DID under that field keeps it.
-- KEYS: 1 the caller's fence of the hash's slot, 2 the hash
-- ARGV: 1 fencing number, then field, value, field, value...
-- Returns how many fields were deleted; the error FENCED.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED fence ' .. ARGV[1] .. ' is no longer the holder')
end
local n = 0
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then
    n = n + redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
return n
