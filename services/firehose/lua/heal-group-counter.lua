-- Sets a consumer group's entries-read counter right where Redis 7.0 left it wrong: a replica gets
-- XREADGROUP as XCLAIM ... LASTID, which does not carry the counter (fixed upstream by redis/redis#12898),
-- so once promoted by a failover it reports the group's lag as unknown (nil) or, if it had synced fully
-- after some reads, too large for good, and the firehose's backpressure would wait forever for the lag
-- to fall. Only when the group has been delivered the whole stream (its last delivered id is the stream's
-- last id) is the right value known: every entry added. One script, so no read moves the group between
-- the check and the fix.
-- KEYS: 1 the stream
-- ARGV: 1 the group
-- Returns 1 when it set the counter, 0 when it was right or cannot be known now.
local function fields(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for _, flat in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local g = fields(flat)
  if g['name'] == ARGV[1] then
    if g['lag'] == 0 then return 0 end
    local s = fields(redis.call('XINFO', 'STREAM', KEYS[1]))
    if g['last-delivered-id'] ~= s['last-generated-id'] then return 0 end
    redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], g['last-delivered-id'], 'ENTRIESREAD',
      s['entries-added'])
    return 1
  end
end
return 0
