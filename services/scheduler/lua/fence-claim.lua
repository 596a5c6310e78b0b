-- Claims one cluster slot's fence (the roll-up's or the prune's) for a new lock holder. The number only
-- goes up: a holder whose number is below the stored one has already been replaced, and is told so.
-- KEYS: 1 the fence key of one slot
-- ARGV: 1 the holder's fencing number
-- Returns 1, or the error FENCED.
local held = tonumber(redis.call('GET', KEYS[1]))
if held and held > tonumber(ARGV[1]) then
  return redis.error_reply('FENCED fence ' .. ARGV[1] .. ' was replaced by ' .. held)
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
