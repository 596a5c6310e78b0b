-- Releases the bot's session lock (session.ts), if the caller still holds it.
-- KEYS: 1 the lock
-- ARGV: 1 the holder's token
-- Returns 1 when released, 0 when the lock had expired or another holder had it.
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
