-- Writes day blobs of one long-term hash that the forget step rewrote without the records of forgotten
-- accounts, if the caller still holds the roll-up lock. Each blob is written only over the exact blob it
-- was computed from (the bytes, compared whole), so nothing written in between is undone. Mark and length
-- would tell a fold (it raises the mark) or a removal (it shortens the blob), but not a backfill's rewrite
-- of a `bs`/`br` blob: its mark is always 0, and a count that changes within a record's head byte keeps
-- the length.
-- The key's expiry stays as it is.
-- KEYS: 1 the roll-up fence of this slot, 2 the long-term hash
-- ARGV: 1 fencing number, then per blob (from 2, three apart): day field, the blob it was computed from,
--       the new blob
-- Returns per blob: 1 written, 0 the field is gone (nothing left to remove), or the field's current blob
-- (compute the removal again from it). The error FENCED when the slot's fence holds another number.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED roll-up fence ' .. ARGV[1] .. ' is no longer the holder')
end
local out = {}
for a = 2, #ARGV, 3 do
  local field = ARGV[a]
  local cur = redis.call('HGET', KEYS[2], field)
  if not cur then
    out[#out + 1] = 0
  elseif cur == ARGV[a + 1] then
    redis.call('HSET', KEYS[2], field, ARGV[a + 2])
    out[#out + 1] = 1
  else
    out[#out + 1] = cur
  end
end
return out
