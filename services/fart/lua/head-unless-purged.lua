-- The head of a cached circle (circles.ts), unless its account was purged meanwhile.
-- KEYS: 1 the account's purge mark, 2 the cache entry (both in the account's slot)
-- ARGV: 1 the last byte of the head
-- Returns the head, or nil when the account is purged.
if redis.call('exists', KEYS[1]) == 1 then return false end
return redis.call('getrange', KEYS[2], 0, ARGV[1])
