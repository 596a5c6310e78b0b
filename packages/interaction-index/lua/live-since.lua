-- Lowers the live-since mark (ms of the earliest event the live index took from the stream) to ARGV[1],
-- or sets it when absent; returns the mark as it stands. Only the indexer calls it: a repo backfill
-- writes older events through the same writer and must not move the mark.
-- KEYS[1] = schema.liveSince   ARGV[1] = ms
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) <= tonumber(ARGV[1]) then return cur end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
