-- Folds one hour into one account's day blobs, sent and received, if the caller still holds the roll-up
-- lock. Each blob is written only over the exact blob the caller merged into (compare-and-set on its mark
-- and length: every fold raises a blob's mark, so an unchanged mark means an unchanged blob). A runner
-- that read a blob, stalled, and lost its lock can therefore neither overwrite newer counts nor fold an
-- hour twice, even before the fence check stops it. The blobs are encoded in Node by packages/long-term;
-- all this script reads of one is its mark, the low 5 bits of the first byte (either layout).
-- KEYS: 1 the roll-up fence of this slot, 2 lt sent, 3 lt received (one slot: the account's hash tag)
-- ARGV: 1 fencing number, 2 day field, 3 mark (1 + hour-of-day), 4 expire-at ms, then per direction
--       (5-7 sent, 8-10 received): the blob to write ('' = none), and the mark and length of the blob it
--       was merged from (0 0 = a new blob, for a field expected to be absent)
-- Returns {sent, received}: -1 nothing to write, 1 written, 0 the field already holds this hour, or the
-- field's current blob (not the one expected: merge into it and call again). The error FENCED when the
-- slot's fence holds another number.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED roll-up fence ' .. ARGV[1] .. ' is no longer the holder')
end
local mark = tonumber(ARGV[3])
local out = {}
for i = 1, 2 do
  local a = 2 + 3 * i
  local blob = ARGV[a]
  if blob == '' then
    out[i] = -1
  else
    local key = KEYS[1 + i]
    local cur = redis.call('HGET', key, ARGV[2])
    local cur_mark = cur and ((string.byte(cur, 1) or 0) % 32)
    if cur and cur_mark >= mark then
      out[i] = 0
    elseif (not cur and ARGV[a + 2] == '0')
      or (cur and cur_mark == tonumber(ARGV[a + 1]) and #cur == tonumber(ARGV[a + 2])) then
      redis.call('HSET', key, ARGV[2], blob)
      redis.call('PEXPIREAT', key, ARGV[4])
      out[i] = 1
    else
      out[i] = cur
    end
  end
end
return out
