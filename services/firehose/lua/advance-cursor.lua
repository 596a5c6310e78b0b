-- Moves the relay cursor, in the MULTI of the batch it covers (publisher.ts), only from the value the
-- session last wrote or read.
-- KEYS: 1 the cursor
-- ARGV: 1 the value it must hold ('' for none), 2 the new value
-- Returns 1 when it moved the cursor, 0 when it held something else.
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
