#!lua name=__LIB__
-- One script applies lists of operations to the logs of SEVERAL accounts whose keys all hash to ONE cluster
-- slot (the writer groups accounts by slot: one call per slot instead of one per account, which is what a
-- call's fixed cost in Redis and in ioredis scales with). Each operation is atomic and idempotent:
--   i  add an inbound record unless present (or the account was purged after it): 1 added, 0 present, -1 refused
--   o  add an outbound record unless present or tombstoned (or purged): 1 / 0 / -1
--   d  delete: mark the outbound records of this rkey and record type deleted and return them (also when they
--      were already deleted, so a redelivered delete repeats its second step); when none exists, add an
--      unknown-delete tombstone so that a create arriving late is refused
--   D  the same without the tombstone (the record is older than the window: its create is never indexed)
--   v  revoke the record whose first 17 bytes match (an inbound record whose create was deleted or refused,
--      an outbound one whose subject was purged): marked, kept until it expires, so that a repeated
--      create finds it and does not append it again: 1 / 0
--   r  remove an inbound record (purge of its partner): 1 removed, 0 absent
--   x  remove an outbound record outright (purge of its partner): 1 / 0
--   m  mark the account purged up to the record's time; z  the same, and drop its records up to then
-- Arguments: horizon (seconds: older records are expired), records per direction the main log takes before
-- spilling, seconds to keep a record after its hour ends, and the accounts' sections in one string. KEYS:
-- the call's scratch key, then per section the account's main log, purge mark and spill logs. A section is
-- [number of its keys (1 byte), layout (1 byte)] and then either
--   layout 0, operations: [count (uint16 BE)], then 25 bytes each: opcode, spill-log key index (one byte,
--     0 = none, else 3.. within the account's keys), 23-byte record; or
--   layout 1, appends (creates only, each direction ascending by rkey): [inbound count, outbound count
--     (uint16 BE each), least and greatest second (uint32 BE each)], the inbound records, the outbound
--     records, then one spill-log key index per record. Taken whole when none can be present (the common
--     case), else as 'i' and 'o' operations.
-- Returns { one result character per operation ('1', '0', '-' for -1), the records deletes marked, each
-- after the 4-byte index of its operation in the call }.
-- Small logs are rebuilt in Lua and written with SET; a big one gets APPEND and SETRANGE (see store), the
-- expiry computed from the header's newest second, so no EXPIRETIME round.
-- __LIB__ and __FN__ stand for the library's and the function's names: src/scripts.ts makes them from a
-- hash of this file, so that indexers of two versions can share one Redis.
local RS, OS, HS = 23, 25, 20
-- Redis hashes every byte of every Lua string it creates (about 1.4 ns a byte): reading an 8 KB log into
-- Lua and writing it back costs ~25 us, the whole budget of a few interactions. So a log is read whole
-- only when a search or an edit needs it, or when it is small; an append to a big one reads its header
-- (GETRANGE), APPENDs the new records and rewrites the header in place (SETRANGE).
local SMALL, SMALL_LAST = 512, '511'
local NOKEY = '\0\0\0\0\0\0\0\0'
-- val[i] keeps a header-sized prefix, stale or blank (the real header is written at the end), so that
-- no copy is made just to cut it off
local BLANK = '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0'
-- Loading a library runs its top level without the standard libraries: the first call binds them.
local sbyte, ssub, schar, sfind, srep, sformat, floor, band, tconcat, pack
local function bind()
  sbyte, ssub, schar, sfind, srep, sformat = string.byte, string.sub, string.char, string.find, string.rep, string.format
  floor, band, tconcat, pack = math.floor, bit.band, table.concat, struct.pack
end
-- The call in hand (set by apply): keys, the scratch key, horizon, cap, keep (see the arguments above),
-- the operations
local K, SCRATCH, horizon, cap, keep, blob

local function u32(s, p)
  local a, b, c, d = sbyte(s, p, p + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end
local function u16(s, p)
  local a, b = sbyte(s, p, p + 1)
  return a * 256 + b
end
-- rkeys are stored as little-endian 64-bit numbers: compare them as two 32-bit halves
local function le32(s, p)
  local a, b, c, d = sbyte(s, p, p + 3)
  return ((d * 256 + c) * 256 + b) * 256 + a
end
local function above(rk, top)
  local x, y = le32(rk, 5), le32(top, 5)
  if x ~= y then return x > y end
  return le32(rk, 1) > le32(top, 1)
end
-- above() for the rkey at position p of the operations (no 8-byte string made)
local function aboveAt(p, top)
  local x, y = le32(blob, p + 4), le32(top, 5)
  if x ~= y then return x > y end
  return le32(blob, p) > le32(top, 1)
end
-- the greater of rkey t and the rkey at position p of the operations (if any)
local function topOf(t, p)
  if p and aboveAt(p, t) then return ssub(blob, p, p + 7) end
  return t
end
local function p32(n)
  return schar(floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end

-- The account in hand: base (its key i is K[base + i]); hdr[i] {oldest second, newest second, inbound
-- appends, outbound appends, greatest rkey, spilled (main log: a record went to a spill log), existed (the
-- key had a header), marked (main log: the account has a purge mark)}; val[i] the whole value of key i
-- (behind a stale or blank header) once read, else nil; edited[i] val[i] was changed in place (not only
-- appended to); at0[i] the expiry its stored header implies. Records appended wait in tail[i] (one
-- concatenation per key at the end, not one per op); pendIn / pendOut let the existence checks see them
-- without searching.
local base, val, hdr, dirty, tail, edited, at0, pendIn, pendOut, purged, purging, appendAll

local function expiry(newest)
  return (floor(newest / 3600) + 1) * 3600 + keep
end

local function compact(i)
  -- drop expired records (once an hour at most per account: the header has the oldest time); the append
  -- counts restart from what is left
  local v, h = val[i], hdr[i]
  local parts, mn, cin, cout = {BLANK}, nil, 0, 0
  for p = HS + 1, #v, RS do
    local s = u32(v, p + 17)
    if s >= horizon then
      parts[#parts + 1] = ssub(v, p, p + RS - 1)
      if mn == nil or s < mn then mn = s end
      if band(sbyte(v, p + 8), 4) ~= 0 then cin = cin + 1 else cout = cout + 1 end
    end
  end
  val[i] = tconcat(parts)
  hdr[i] = {mn, h[2], cin, cout, h[5], h[6], h[7], h[8]}
  dirty[i] = true
  edited[i] = true
end

-- The whole value of key i (its header loaded first).
local function full(i)
  local v = val[i]
  if v == nil then
    v = redis.call('GET', K[base + i]) or BLANK
    val[i] = v
  end
  return v
end

-- The start of a log (all of it when small, else its first SMALL bytes) and its length.
local function peek(key)
  local raw = redis.call('GETRANGE', key, '0', SMALL_LAST)
  local len = #raw
  if len == SMALL then len = redis.call('STRLEN', key) end
  return raw, len
end

-- Loads key i's header (and, for a small or old-format log, its whole value).
local function load(i)
  if hdr[i] ~= nil then return end
  local key = K[base + i]
  local raw, n = peek(key)
  local h, v
  if n > 0 and n % RS == HS then
    -- main log only: bit 15 of the outbound count, a record of this account went to a spill log; bit 15
    -- of the inbound count, the account has a purge mark
    if #raw == n then v = raw end
    local cin, out = u16(raw, 17), u16(raw, 19)
    h = {u32(raw, 1), u32(raw, 5), cin % 32768, out % 32768, ssub(raw, 9, 16), out >= 32768, true, cin >= 32768}
  elseif n > 0 then
    -- an older header (12 bytes: no greatest rkey; 8 bytes: nor newest second): find them once, and
    -- rewrite the log with the current header
    local raw = redis.call('GET', key)
    local hs = n % RS
    v = BLANK .. ssub(raw, hs + 1)
    local nw, top = horizon, NOKEY
    for p = HS + 1, #v, RS do
      local s = u32(v, p + 17)
      if s > nw then nw = s end
      local rk = ssub(v, p, p + 7)
      if above(rk, top) then top = rk end
    end
    if hs == 12 then
      h = {u32(raw, 1), u32(raw, 5), u16(raw, 9), u16(raw, 11), top, true, true, true}
    else
      h = {u32(raw, 1), nw, u16(raw, 5), u16(raw, 7), top, true, true, true}
    end
    dirty[i] = true
    edited[i] = true
  else
    -- no log: {oldest, newest, inbound, outbound, greatest rkey, spilled, existed}
    h = {nil, 0, 0, 0, NOKEY, false, false, false}
    v = BLANK
  end
  if i > 2 and n > HS then
    -- a spill log found while the main log did not know (it was absent): note it there too
    local m = hdr[1]
    if not m[6] or h[2] > m[2] then
      m[6] = true
      if h[2] > m[2] then m[2] = h[2] end
      dirty[1] = true
    end
  end
  val[i] = v
  hdr[i] = h
  tail[i] = {}
  if h[7] then at0[i] = expiry(h[2]) end
  if i == 1 and h[1] ~= nil and h[1] < horizon then
    full(1)
    compact(1)
  end
end

local function purgedUpTo()
  if purged == nil then
    local m = hdr[1]
    if m[7] and not m[8] then
      -- the main log says the account has no purge mark: no GET
      purged = -1
    else
      local p = redis.call('GET', K[base + 2])
      purged = p and tonumber(p) or -1
      if p then m[8] = true end
    end
  end
  return purged
end

-- Moves appended records into the values, so that searches and edits see them.
local function flush()
  for i, t in pairs(tail) do
    if #t > 0 then
      val[i] = full(i) .. tconcat(t)
      tail[i] = {}
      edited[i] = true
    end
  end
  pendIn, pendOut = {}, {}
end

local function find(v, needle, from)
  local p = from > HS and from or HS + 1
  while true do
    local q = sfind(v, needle, p, true)
    if not q then return nil end
    if (q - HS - 1) % RS == 0 then return q end
    p = q + 1
  end
end

local function append(i, rec, sec, inbound)
  load(i)
  local h = hdr[i]
  if h[1] == nil or sec < h[1] then h[1] = sec end
  if sec > h[2] then h[2] = sec end
  local rk = ssub(rec, 1, 8)
  if above(rk, h[5]) then h[5] = rk end
  if inbound then h[3] = h[3] + 1 else h[4] = h[4] + 1 end
  local t = tail[i]
  t[#t + 1] = rec
  dirty[i] = true
end

-- The main log takes up to cap records of each direction (counted as appended, so that where a record
-- lands depends only on the order of that direction's appends, which is stream order however the stream
-- is cut into batches); the rest go to the spill log of their hour.
local function place(hk, rec, sec, inbound)
  local h = hdr[1]
  local n = inbound and h[3] or h[4]
  if hk > 0 and n >= cap then
    load(hk)
    append(hk, rec, sec, inbound)
    -- the main log notes that the account spilled, and lives at least as long as its spill logs
    if not h[6] or sec > h[2] then
      h[6] = true
      if sec > h[2] then h[2] = sec end
      dirty[1] = true
    end
  else
    append(1, rec, sec, inbound)
  end
end

-- A record whose rkey is above every rkey its logs ever held cannot be there (nor its tombstone): no search.
-- TIDs grow with time, so this is the usual case for a new record; a redelivered one takes the search.
local function fresh(rec, hk)
  if not above(rec, hdr[1][5]) then return false end
  return hk == 0 or above(rec, hdr[hk][5])
end

local function remove(i, q)
  local v = val[i]
  val[i] = ssub(v, 1, q - 1) .. ssub(v, q + RS)
  dirty[i] = true
  edited[i] = true
end

-- Expiry seconds as command arguments, converted once per call (a number argument costs a sprintf).
local atText
local function exat(t)
  local s = atText[t]
  if s == nil then
    s = sformat('%d', t)
    atText[t] = s
  end
  return s
end

local function header(oldest, newest, top, cin, cout)
  return pack('>I4I4c8I2I2', oldest, newest, top, cin, cout)
end

-- A big log only appended to: the new records, then the header in place. APPEND grows a string to twice
-- its size when it must reallocate (the allocator's size class usually leaves room for a few records);
-- COPY and RENAME make a copy of exactly its size and drop the grown one.
local function appendInPlace(key, head, add, at, sameExpiry)
  if #add > 0 then redis.call('APPEND', key, add) end
  redis.call('SETRANGE', key, '0', head)
  if not sameExpiry then redis.call('EXPIREAT', key, exat(at)) end
  if #add > 0 then
    redis.call('COPY', key, SCRATCH, 'REPLACE')
    redis.call('RENAME', SCRATCH, key)
  end
end

local function store()
  for i, _ in pairs(dirty) do
    local key = K[base + i]
    local v = val[i]
    local h = hdr[i]
    local add = tconcat(tail[i])
    local cin, out = h[3] > 32767 and 32767 or h[3], h[4] > 32767 and 32767 or h[4]
    if i == 1 and h[8] then cin = cin + 32768 end
    if i == 1 and h[6] then out = out + 32768 end
    local head = header(h[1] or 0, h[2], h[5], cin, out)
    local at = expiry(h[2])
    if h[7] and not edited[i] and (v == nil or #v + #add > SMALL) then
      appendInPlace(key, head, add, at, at == at0[i])
    else
      v = full(i)
      if #add > 0 then v = v .. add end
      -- A log that removals emptied keeps its header (until it expires): its append counts decide where
      -- later records land, and must not restart at a moment that depends on how batches were cut or
      -- overlapped. A purge deletes the purged account's logs outright.
      if #v == HS and (purging or h[1] == nil) then
        redis.call('DEL', key)
      elseif #v <= SMALL then
        redis.call('SET', key, head .. ssub(v, HS + 1), 'EXAT', at)
      else
        -- the value as it is, then its header in place (within its length: no reallocation)
        redis.call('SET', key, v, 'EXAT', at)
        redis.call('SETRANGE', key, '0', head)
      end
    end
  end
end

-- Writes a log read by peek (raw, len) with a new header and records appended, in as few bytes through
-- Lua as the size allows.
local function writeLog(key, raw, len, head, add, newest, oldNewest)
  -- the hour's end + keep (arithmetic, not math.floor: a call costs more)
  local at = newest - newest % 3600 + 3600 + keep
  local same = len > 0 and newest - newest % 3600 == oldNewest - oldNewest % 3600
  if same and #raw == len and len + #add <= SMALL then
    redis.call('SET', key, head .. ssub(raw, HS + 1) .. add, 'KEEPTTL')
    return
  end
  if len == 0 then
    redis.call('SET', key, head .. add, 'EXAT', exat(at))
  elseif #raw == len and len + #add <= SMALL then
    redis.call('SET', key, head .. ssub(raw, HS + 1) .. add, 'EXAT', exat(at))
  else
    appendInPlace(key, head, add, at, same)
  end
end

-- The fast path of a section of appends (every create of a batch on one account): when each run's first
-- record is above every rkey the account's logs hold (so none can be present), the account has no purge
-- mark and its main log needs no compaction, the records are placed and written with a few commands and
-- no per-record string work for those that go to the main log. Otherwise it returns false having written
-- nothing, and the section takes the general path.
function appendAll(at, nIn, nOut, hkAt, minSec, maxSec)
  -- Every Lua function call costs about a microsecond here (C calls included): the common case below
  -- decodes with one string.byte per header or rkey and no helpers.
  local mainKey = K[base + 1]
  local raw = redis.call('GETRANGE', mainKey, '0', SMALL_LAST)
  local len = #raw
  if len == SMALL then len = redis.call('STRLEN', mainKey) end
  -- header: oldest and newest second, greatest rkey (low and high 32 bits), append counts, spilled
  local oldest, newest, tlo, thi, cin, cout, spilled = nil, 0, 0, 0, 0, 0, false
  if len == 0 then
    -- no log: a purge mark without one is possible (the purge deleted the logs)
    if redis.call('EXISTS', K[base + 2]) == 1 then return false end
  elseif len % RS ~= HS then
    return false
  else
    local h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, h20 =
      sbyte(raw, 1, HS)
    -- a purge mark, or a compaction due: the general path
    if h17 >= 128 then return false end
    oldest = ((h1 * 256 + h2) * 256 + h3) * 256 + h4
    if oldest < horizon then return false end
    newest = ((h5 * 256 + h6) * 256 + h7) * 256 + h8
    tlo, thi = ((h12 * 256 + h11) * 256 + h10) * 256 + h9, ((h16 * 256 + h15) * 256 + h14) * 256 + h13
    cin, cout, spilled = h17 * 256 + h18, (h19 % 128) * 256 + h20, h19 >= 128
  end
  -- each run ascends: its first record is its least, and must be above every rkey the logs hold
  local outAt = at + nIn * RS
  if nIn > 0 then
    local a, b, c, d, e, f, g, h = sbyte(blob, at, at + 7)
    local hi = ((h * 256 + g) * 256 + f) * 256 + e
    if hi < thi or (hi == thi and ((d * 256 + c) * 256 + b) * 256 + a <= tlo) then return false end
  end
  if nOut > 0 then
    local a, b, c, d, e, f, g, h = sbyte(blob, outAt, outAt + 7)
    local hi = ((h * 256 + g) * 256 + f) * 256 + e
    if hi < thi or (hi == thi and ((d * 256 + c) * 256 + b) * 256 + a <= tlo) then return false end
  end
  if not spilled and cin + nIn <= cap and cout + nOut <= cap then
    -- all to the main log: the new greatest rkey is the greater last record of the two runs
    local last = at + (nIn + nOut - 1) * RS
    if nIn > 0 and nOut > 0 then
      local lastIn = outAt - RS
      local a, b, c, d, e, f, g, h = sbyte(blob, lastIn, lastIn + 7)
      local i, j, k, l, m, n2, o, p = sbyte(blob, last, last + 7)
      local x, y = ((h * 256 + g) * 256 + f) * 256 + e, ((p * 256 + o) * 256 + n2) * 256 + m
      if x > y or (x == y and ((d * 256 + c) * 256 + b) * 256 + a > ((l * 256 + k) * 256 + j) * 256 + i) then
        last = lastIn
      end
    end
    local o2 = (oldest == nil or minSec < oldest) and minSec or oldest
    local n2 = maxSec > newest and maxSec or newest
    local ci, co = cin + nIn, cout + nOut
    local head = pack('>I4I4c8I2I2', o2, n2, ssub(blob, last, last + 7), ci > 32767 and 32767 or ci,
      co > 32767 and 32767 or co)
    writeLog(mainKey, raw, len, head, ssub(blob, at, at + (nIn + nOut) * RS - 1), n2, newest)
    return true
  end
  local top = len == 0 and NOKEY or ssub(raw, 9, 16)
  -- The main log takes records while it has room in their direction (and those without a spill hour);
  -- the rest go to the spill log of their hour. Contiguous records with one destination: one substring.
  local total = nIn + nOut
  local mainAdd, topIn, topOut
  local addIn, addOut = 0, 0
  -- spill logs by key index: {parts, oldest, newest, inbound, outbound, last in, last out, raw, len}
  local spills = {}
  -- per spill log that may hold a record of the section (it gets one, or the account has spilled
  -- before): the first inbound and outbound record that must be above its greatest rkey
  local firsts = {}
  local parts = {}
  local from, dest = 0, -1
  for j = 0, total do
    local inbound = j < nIn
    local hk, d = 0, -2
    if j < total then
      hk, d = sbyte(blob, hkAt + j), 0
      if hk > 0 and (inbound and cin + addIn or cout + addOut) >= cap then d = hk end
    end
    if d ~= dest then
      -- the records from 'from' to here had one destination: one substring
      if dest >= 0 and j > from then
        local t = dest == 0 and parts or spills[dest][1]
        t[#t + 1] = ssub(blob, at + from * RS, at + j * RS - 1)
      end
      if j == total then break end
      from, dest = j, d
    end
    local p = at + j * RS
    if hk > 0 and (d > 0 or spilled) then
      local f = firsts[hk]
      if f == nil then
        f = {}
        firsts[hk] = f
      end
      if inbound then f[1] = f[1] or p else f[2] = f[2] or p end
    end
    if d == 0 then
      if inbound then addIn = addIn + 1; topIn = p else addOut = addOut + 1; topOut = p end
    else
      local sp = spills[d]
      if sp == nil then
        sp = {{}, nil, 0, 0, 0, nil, nil}
        spills[d] = sp
      end
      local sec = u32(blob, p + 17)
      if sp[2] == nil or sec < sp[2] then sp[2] = sec end
      if sec > sp[3] then sp[3] = sec end
      if inbound then sp[4] = sp[4] + 1; sp[6] = p else sp[5] = sp[5] + 1; sp[7] = p end
    end
  end
  mainAdd = tconcat(parts)
  -- read every spill log concerned before writing anything: none may hold one of the records
  for hk, f in pairs(firsts) do
    local sraw, slen = peek(K[base + hk])
    if slen > 0 and slen % RS ~= HS then return false end
    local stop = slen > 0 and ssub(sraw, 9, 16) or NOKEY
    if f[1] and not aboveAt(f[1], stop) then return false end
    if f[2] and not aboveAt(f[2], stop) then return false end
    local sp = spills[hk]
    if sp then sp[8], sp[9] = sraw, slen end
  end
  local mainNewest = newest
  for hk, sp in pairs(spills) do
    local sraw, slen = sp[8], sp[9]
    local so, sn, stop, sin, sout = nil, 0, NOKEY, 0, 0
    if slen > 0 then
      so, sn, stop, sin, sout = u32(sraw, 1), u32(sraw, 5), ssub(sraw, 9, 16), u16(sraw, 17), u16(sraw, 19)
    end
    local o2 = (so == nil or sp[2] < so) and sp[2] or so
    local n2 = sp[3] > sn and sp[3] or sn
    stop = topOf(topOf(stop, sp[6]), sp[7])
    sin, sout = sin + sp[4], sout + sp[5]
    sin, sout = sin > 32767 and 32767 or sin, sout > 32767 and 32767 or sout
    writeLog(K[base + hk], sraw, slen, header(o2, n2, stop, sin, sout), tconcat(sp[1]), n2, sn)
    -- the main log notes that the account spilled, and lives at least as long as its spill logs
    spilled = true
    if n2 > mainNewest then mainNewest = n2 end
  end
  if addIn + addOut > 0 then
    if oldest == nil or minSec < oldest then oldest = minSec end
    if maxSec > mainNewest then mainNewest = maxSec end
  end
  if #mainAdd == 0 and len == 0 then return true end
  cin, cout = cin + addIn, cout + addOut
  cin = cin > 32767 and 32767 or cin
  cout = (cout > 32767 and 32767 or cout) + (spilled and 32768 or 0)
  writeLog(mainKey, raw, len, header(oldest or 0, mainNewest, topOf(topOf(top, topIn), topOut), cin, cout),
    mainAdd, mainNewest, newest)
  return true
end

-- results: one character per operation; the records deletes marked; the index of the operation in hand
local codes, deleted, n

-- One operation of the account in hand (the general path): its result character.
local function applyOp(code, hk, rec)
  local sec = u32(rec, 18)
  load(1)
  -- the spill log is searched only when the main log says the account may have spilled
  local sk = hk
  if hk > 0 and hdr[1][7] and not hdr[1][6] then sk = 0 end
  if sk > 0 or (hk > 0 and code == 'z') then load(hk) end
  local r = '0'
  if code == 'i' then
    local needle = ssub(rec, 1, 17)
    if sec <= purgedUpTo() then
      r = '-'
    elseif fresh(rec, sk) then
      place(hk, rec, sec, true)
      pendIn[needle] = true
      r = '1'
    else
      -- the same record revoked (deleted, or its create refused) counts as present: never appended twice
      local revoked = ssub(rec, 1, 8) .. schar(sbyte(rec, 9) + 8) .. ssub(rec, 10, 17)
      if pendIn[needle] or find(full(1), needle, 1) or (sk > 0 and find(full(sk), needle, 1))
        or find(full(1), revoked, 1) or (sk > 0 and find(full(sk), revoked, 1)) then
        r = '0'
      else
        place(hk, rec, sec, true)
        pendIn[needle] = true
        r = '1'
      end
    end
  elseif code == 'o' then
    if sec <= purgedUpTo() then
      r = '-'
    elseif fresh(rec, sk) then
      place(hk, rec, sec, false)
      pendOut[ssub(rec, 1, 8)] = {sbyte(rec, 9)}
      r = '1'
    else
      local rk = ssub(rec, 1, 8)
      local kind = sbyte(rec, 9) % 4
      local rtype = kind
      if rtype > 2 then rtype = 2 end
      local found = nil
      local function check(c)
        if band(c, 4) ~= 0 then return end
        if band(c, 16) ~= 0 then
          if c % 4 == rtype then found = '-' end
        elseif c % 4 == kind then
          if band(c, 8) ~= 0 then found = '-' else found = '0' end
        end
      end
      local pend = pendOut[rk]
      if pend then for _, c in ipairs(pend) do if found == nil then check(c) end end end
      for k = 1, (sk > 0 and 2 or 1) do
        local v = full(k == 1 and 1 or sk)
        local q = find(v, rk, 1)
        while q and found == nil do
          check(sbyte(v, q + 8))
          q = find(v, rk, q + 1)
        end
      end
      if found == nil then
        place(hk, rec, sec, false)
        if pend == nil then pend = {}; pendOut[rk] = pend end
        pend[#pend + 1] = sbyte(rec, 9)
        r = '1'
      else
        r = found
      end
    end
  elseif code == 'd' or code == 'D' then
    flush()
    local rk = ssub(rec, 1, 8)
    local rtype = sbyte(rec, 9) % 4
    local any = false
    for k = 1, (sk > 0 and 2 or 1) do
      local i = k == 1 and 1 or sk
      local v = full(i)
      local q = find(v, rk, 1)
      while q do
        local c = sbyte(v, q + 8)
        if band(c, 4) == 0 then
          if band(c, 16) ~= 0 then
            if c % 4 == rtype then any = true end
          else
            local t = c % 4
            if t > 2 then t = 2 end
            if t == rtype then
              any = true
              if band(c, 8) == 0 then
                v = ssub(v, 1, q + 7) .. schar(c + 8) .. ssub(v, q + 9)
                val[i] = v
                dirty[i] = true
                edited[i] = true
              end
              deleted[#deleted + 1] = p32(n) .. ssub(v, q, q + RS - 1)
            end
          end
        end
        q = find(v, rk, q + 1)
      end
    end
    if not any and code == 'd' then
      place(hk, rec, sec, false)
      local pend = pendOut[rk]
      if pend == nil then pend = {}; pendOut[rk] = pend end
      pend[#pend + 1] = sbyte(rec, 9)
    end
  elseif code == 'm' or code == 'z' then
    if code == 'z' then purging = true end
    -- purge: 'm' marks the account purged up to sec (creates at or before it are refused from now on);
    -- 'z' also drops its records (and tombstones) up to sec from the main log or the given spill log
    if sec > purgedUpTo() then
      purged = sec
      redis.call('SET', K[base + 2], sec, 'EXAT', sec + keep)
      hdr[1][8] = true
      dirty[1] = true
    end
    if code == 'z' then
      flush()
      local i = hk > 0 and hk or 1
      local v = full(i)
      local parts = {BLANK}
      for p = HS + 1, #v, RS do
        if u32(v, p + 17) > sec then parts[#parts + 1] = ssub(v, p, p + RS - 1) end
      end
      if (#parts - 1) * RS < #v - HS then
        val[i] = tconcat(parts)
        dirty[i] = true
        edited[i] = true
        r = '1'
      end
    end
  else
    -- 'r' / 'x': remove the record whose first 17 bytes match; 'v': mark that record revoked
    flush()
    local needle = ssub(rec, 1, 17)
    for k = 1, (sk > 0 and 2 or 1) do
      local i = k == 1 and 1 or sk
      local q = find(full(i), needle, 1)
      if q then
        if code == 'v' then
          local v = val[i]
          val[i] = ssub(v, 1, q + 7) .. schar(sbyte(v, q + 8) + 8) .. ssub(v, q + 9)
          dirty[i] = true
          edited[i] = true
        else
          remove(i, q)
        end
        r = '1'
        break
      end
    end
  end
  return r
end

local function begin()
  val, hdr, dirty, tail, edited, at0, pendIn, pendOut = {}, {}, {}, {}, {}, {}, {}, {}
  purged, purging = nil, false
end

local function apply(keys, args)
  if sbyte == nil then bind() end
  K, SCRATCH, blob = keys, keys[1], args[4]
  horizon, cap, keep = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
  codes, deleted, n, atText = {}, {}, 0, {}
  base = 1
  local at = 1
  while at <= #blob do
    local nkeys, layout, c1, c2, c3, c4 = sbyte(blob, at, at + 5)
    if layout == 0 then
      -- operations: [0, count (uint16)], then 25 bytes each (opcode, spill key index, record)
      local nops = c1 * 256 + c2
      at = at + 4
      begin()
      for o = at, at + (nops - 1) * OS, OS do
        codes[#codes + 1] = applyOp(ssub(blob, o, o), sbyte(blob, o + 1), ssub(blob, o + 2, o + OS - 1))
        n = n + 1
      end
      store()
      at = at + nops * OS
    else
      -- appends: [1, inbound count, outbound count (uint16 each), least and greatest second (uint32 each)],
      -- the inbound records, the outbound ones (each run in stream order and ascending by rkey), then one
      -- spill key index per record
      local nIn, nOut = c1 * 256 + c2, c3 * 256 + c4
      local a, b, c, d, e, f, g, h = sbyte(blob, at + 6, at + 13)
      local minSec, maxSec = ((a * 256 + b) * 256 + c) * 256 + d, ((e * 256 + f) * 256 + g) * 256 + h
      at = at + 14
      local hkAt = at + (nIn + nOut) * RS
      if appendAll(at, nIn, nOut, hkAt, minSec, maxSec) then
        codes[#codes + 1] = srep('1', nIn + nOut)
        n = n + nIn + nOut
      else
        begin()
        for j = 0, nIn + nOut - 1 do
          local p = at + j * RS
          codes[#codes + 1] = applyOp(j < nIn and 'i' or 'o', sbyte(blob, hkAt + j), ssub(blob, p, p + RS - 1))
          n = n + 1
        end
        store()
      end
      at = hkAt + nIn + nOut
    end
    base = base + nkeys
  end
  return {tconcat(codes), tconcat(deleted)}
end

redis.register_function('__FN__', apply)
