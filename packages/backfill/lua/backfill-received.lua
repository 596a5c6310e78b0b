-- One source repo's share of one account's backfilled received blobs (`lt:{X}:br`), replaced whole: every
-- record naming the source leaves every day of the hash, then the source's new records are added. Running
-- it twice, or again after a crash, leaves the same hash: that is the exactly-once of the backfilled sides.
-- Day blob format: packages/long-term/src/day-blob.ts (mark byte, then head [varint] 8-byte partner id).
-- KEYS[1] = the `br` hash   ARGV[1] = the source's 8-byte id   ARGV[2] = expire-at ms (the newest day's
-- plus the retention; the key's expiry only moves later; 0 = leave it)   ARGV[3] = the new records, packed
-- per day: day (3 bytes, big-endian), length (1 byte), that many bytes of records (no mark byte); absent
-- or empty = none. One argument rather than a pair per day: the per-argument cost, on both sides, was
-- most of a backfill's day writes.
-- KEYS[2] = the account's `lt-version` hash   ARGV[4] = the run's token, set there for each day whose blob
-- this writes: a replacement can keep a blob's length, and the API's history memo knows a day by its blobs'
-- lengths and this token.
local key, src, packed = KEYS[1], ARGV[1], ARGV[3] or ''

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

-- unpack() of a long list would overflow Lua's C stack: a few hundred arguments a call.
local function call(cmd, k, list)
  for i = 1, #list, 512 do
    redis.call(cmd, k, unpack(list, i, math.min(i + 511, #list)))
  end
end

local add, pos = {}, 1
while pos <= #packed do
  local d1, d2, d3, len = string.byte(packed, pos, pos + 3)
  add[tostring(d1 * 65536 + d2 * 256 + d3)] = string.sub(packed, pos + 4, pos + 3 + len)
  pos = pos + 4 + len
end

local set, del = {}, {}
local fields = redis.call('HGETALL', key)
-- `br` blobs are plain (bit 7 of the mark byte clear): nothing writes them compact (the forget step keeps a
-- blob's layout). Refuse rather than misread one, before anything is written.
for i = 2, #fields, 2 do
  if (string.byte(fields[i], 1) or 0) >= 128 then
    return redis.error_reply('COMPACT a compact day blob in ' .. key .. ', day ' .. fields[i - 1])
  end
end
for i = 1, #fields, 2 do
  local day, blob = fields[i], fields[i + 1]
  local rest = strip(blob)
  local new = add[day]
  if new then
    rest = rest .. new
    add[day] = nil
  end
  if rest == '' then
    del[#del + 1] = day
  elseif new or #rest + 1 ~= #blob then
    set[#set + 1] = day
    set[#set + 1] = string.sub(blob, 1, 1) .. rest
  end
end
for day, new in pairs(add) do
  set[#set + 1] = day
  set[#set + 1] = '\0' .. new
end
-- HSET first: a hash whose old days all go while new ones come keeps its expiry (it only moves later).
call('HSET', key, set)
call('HDEL', key, del)

local expire = tonumber(ARGV[2])
if expire > 0 and redis.call('EXISTS', key) == 1 and redis.call('PEXPIRETIME', key) < expire then
  redis.call('PEXPIREAT', key, expire)
end

-- Tokens for the days given records (stripping alone only shortens or deletes blobs: their lengths tell).
-- No field is ever removed, and the tokens outlive the blobs (their expiry too only moves later): were a
-- day's token to go first, the day could look like one no backfill had changed since a reader last saw it.
if #set > 0 and expire > 0 then
  local version, tokens = KEYS[2], {}
  for i = 1, #set, 2 do
    tokens[#tokens + 1] = set[i]
    tokens[#tokens + 1] = ARGV[4]
  end
  call('HSET', version, tokens)
  local at = redis.call('PEXPIRETIME', version)
  if at == -1 or at < expire then redis.call('PEXPIREAT', version, expire) end
end
return 1
