-- Takes a job kind's lock and hands out its fencing number, in one step: a holder that stalled between
-- the two could otherwise draw its number after the next holder and outrank it.
-- KEYS: 1 the lock, 2 its fencing counter (tagged with the lock's name: one slot)
-- ARGV: 1 the holder's random token, 2 the lock's expiry in ms
-- Returns the fencing number, or 0 when another holder has the lock.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
return redis.call('INCR', KEYS[2])
