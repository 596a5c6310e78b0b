-- One source repo's share of one account's backfilled received blobs (`lt:{X}:br`), replaced whole: every
-- record naming the source leaves every day of the hash, then the source's new records are added. Running
-- it twice, or again after a crash, leaves the same hash: that is the exactly-once of the backfilled sides.
-- Day blob format: packages/long-term/src/day-blob.ts (mark byte, then head [varint] 8-byte partner id).
-- KEYS[1] = the `br` hash   ARGV[1] = the source's 8-byte id   ARGV[2] = expire-at ms (the newest day's
-- plus the retention; the key's expiry only moves later; 0 = leave it)   ARGV[3..] = day, records (no mark byte) pairs
local key, src = KEYS[1], ARGV[1]

local function strip(blob)
  local kept, pos, n = {}, 2, #blob
  while pos <= n do
    local p = pos + 1
    if string.byte(blob, pos) % 64 == 0 then
      while string.byte(blob, p) >= 128 do p = p + 1 end
      p = p + 1
    end
    if string.sub(blob, p, p + 7) ~= src then kept[#kept + 1] = string.sub(blob, pos, p + 7) end
    pos = p + 8
  end
  return table.concat(kept)
end

local add = {}
for i = 3, #ARGV, 2 do add[ARGV[i]] = ARGV[i + 1] end

local fields = redis.call('HGETALL', key)
for i = 1, #fields, 2 do
  local day, blob = fields[i], fields[i + 1]
  local rest = strip(blob)
  local new = add[day]
  if new then
    rest = rest .. new
    add[day] = nil
  end
  if rest == '' then
    redis.call('HDEL', key, day)
  elseif new or #rest + 1 ~= #blob then
    redis.call('HSET', key, day, string.sub(blob, 1, 1) .. rest)
  end
end
for day, new in pairs(add) do redis.call('HSET', key, day, '\0' .. new) end

local expire = tonumber(ARGV[2])
if expire > 0 and redis.call('EXISTS', key) == 1 and redis.call('PEXPIRETIME', key) < expire then
  redis.call('PEXPIREAT', key, expire)
end
return 1
