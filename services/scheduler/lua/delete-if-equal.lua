-- Deletes a string key only if it holds the given value: a cached handle resolution of a forgotten
-- account, which another account may have taken over since (its entry stays).
-- KEYS: 1 the key
-- ARGV: 1 the value
-- Returns 1 deleted, 0 absent or another value.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
