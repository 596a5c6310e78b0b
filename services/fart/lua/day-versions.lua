-- What the history memo (src/history-memo.ts) knows an account's days by: per day, the backfill's token for
-- it and the byte lengths of its four day blobs. One call rather than five commands a day: 450 commands
-- for 90 days cost the API more than the rest of a remembered request.
-- KEYS: 1-4 the account's long-term hashes (s, r, bs, br), 5 its `lt-version` hash (all in its slot)
-- ARGV: the days
-- Returns one string per day: the token (empty when none) and the four lengths, space-separated.
local out = {}
for i, day in ipairs(ARGV) do
  local token = redis.call('HGET', KEYS[5], day) or ''
  out[i] = token .. ' ' .. redis.call('HSTRLEN', KEYS[1], day) .. ' ' .. redis.call('HSTRLEN', KEYS[2], day)
    .. ' ' .. redis.call('HSTRLEN', KEYS[3], day) .. ' ' .. redis.call('HSTRLEN', KEYS[4], day)
end
return out
