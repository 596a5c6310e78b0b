-- One change of one opt-out reason per 4 arguments, applied in order (src/opt-outs.ts, changeOptOuts).
-- KEYS: optOuts, admin, blocks, labels (one slot: the reasons are tagged with the set's name).
-- ARGV: did, reason, on (1/0), rkey (or ''), repeated. Returns per change: opted out now (1/0), moved (1/0).
-- An opt-out from before reasons were kept has none: it is taken as an admin's, so no event undoes it.
local out = {}
for i = 1, #ARGV, 4 do
  local did, reason, on, rkey = ARGV[i], ARGV[i + 1], ARGV[i + 2] == '1', ARGV[i + 3]
  local function reasons()
    return redis.call('SISMEMBER', KEYS[2], did) == 1 or redis.call('HEXISTS', KEYS[3], did) == 1
      or redis.call('SISMEMBER', KEYS[4], did) == 1
  end
  local was = redis.call('SISMEMBER', KEYS[1], did) == 1
  if was and not reasons() then redis.call('SADD', KEYS[2], did) end
  if reason == 'admin' then
    redis.call(on and 'SADD' or 'SREM', KEYS[2], did)
  elseif reason == 'label' then
    redis.call(on and 'SADD' or 'SREM', KEYS[4], did)
  elseif on then
    redis.call('HSET', KEYS[3], did, rkey)
  elseif redis.call('HGET', KEYS[3], did) == rkey then
    redis.call('HDEL', KEYS[3], did)
  end
  local now = reasons()
  if now ~= was then redis.call(now and 'SADD' or 'SREM', KEYS[1], did) end
  out[#out + 1] = now and 1 or 0
  out[#out + 1] = now ~= was and 1 or 0
end
return out
