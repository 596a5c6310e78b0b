import type { Redis } from 'ioredis'

// One script applies lists of operations to the logs of SEVERAL accounts whose keys all hash to ONE cluster
// slot (the writer groups accounts by slot: one call per slot instead of one per account, which is what a
// call's fixed cost in Redis and in ioredis scales with). Each operation is atomic and idempotent:
//   i  add an inbound record unless present (or the account was purged after it): 1 added, 0 present, -1 refused
//   o  add an outbound record unless present or tombstoned (or purged): 1 / 0 / -1
//   d  delete: mark the outbound records of this rkey and record type deleted and return them (also when they
//      were already deleted, so a redelivered delete repeats its second step); when none exists, add an
//      unknown-delete tombstone so that a create arriving late is refused
//   D  the same without the tombstone (the record is older than the window: its create is never indexed)
//   v  revoke the record whose first 17 bytes match (an inbound record whose create was deleted or refused,
//      an outbound one whose subject was purged): marked, kept until it expires, so that a repeated
//      create finds it and does not append it again: 1 / 0
//   r  remove an inbound record (purge of its partner): 1 removed, 0 absent
//   x  remove an outbound record outright (purge of its partner): 1 / 0
//   m  mark the account purged up to the record's time; z  the same, and drop its records up to then
// ARGV[1] horizon (seconds: older records are expired), ARGV[2] records per direction the main log takes
// before spilling, ARGV[3] seconds to keep a record after its hour ends, ARGV[4] the accounts' operations:
// per account a section [number of its keys (1 byte), number of its operations (uint16 BE)] and then its
// operations, 25 bytes each: opcode, spill-log key index (one byte, 0 = none, else 3.. within the
// account's keys), 23-byte record. KEYS: per section, the account's main log, purge mark, spill logs.
// Returns { one result character per operation ('1', '0', '-' for -1), the records deletes marked, each
// after the 4-byte index of its operation in the call }.
// Values are rebuilt in Lua and written once with SET EXAT (exact size: APPEND would preallocate up to twice
// the size), the expiry computed from the header's newest second, so no EXPIRETIME round.
const APPLY_LUA = `
local RS, OS, HS = 23, 25, 20
local NOKEY = '\\0\\0\\0\\0\\0\\0\\0\\0'
-- val[i] keeps a header-sized prefix, stale or blank (the real header is written at the end), so that
-- no 8 KB copy is made just to cut it off: Redis hashes every byte of every Lua string it creates
local BLANK = string.rep('\\0', HS)
local sbyte, ssub, schar, sfind, floor, band, tconcat = string.byte, string.sub, string.char, string.find, math.floor, bit.band, table.concat
local pack = struct.pack
local horizon = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local blob = ARGV[4]

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
local function p32(n)
  return schar(floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end

-- The account in hand: base (its key i is KEYS[base + i]); val[i] the value of key i (behind a stale or
-- blank header); hdr[i] {oldest second, newest second, inbound appends, outbound appends, greatest rkey,
-- spilled (main log: a record went to a spill log), existed (the key had a header), marked (main log: the
-- account has a purge mark)}. Records appended wait in
-- tail[i] (one concatenation per key at the end, not one per op); pendIn / pendOut let the existence
-- checks see them without searching.
local base, val, hdr, dirty, tail, pendIn, pendOut, purged, purging

local function load(i)
  local v = val[i]
  if v == nil then
    local raw = redis.call('GET', KEYS[base + i]) or ''
    local n = #raw
    local h
    if n % RS == HS then
      -- main log only: bit 15 of the outbound count, a record of this account went to a spill log; bit 15
      -- of the inbound count, the account has a purge mark
      local cin, out = u16(raw, 17), u16(raw, 19)
      h = {u32(raw, 1), u32(raw, 5), cin % 32768, out % 32768, ssub(raw, 9, 16), out >= 32768, true, cin >= 32768}
      v = raw
    elseif n % RS == 12 or n % RS == 8 then
      -- an older header (12 bytes: no greatest rkey; 8 bytes: nor newest second): find them once
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
    else
      -- no log: {oldest, newest, inbound, outbound, greatest rkey, spilled, existed}
      h = {nil, 0, 0, 0, NOKEY, false, false, false}
      v = BLANK
    end
    if i > 2 and #v > HS then
      -- a spill log found while the main log did not know (it was absent): note it there too
      local m = hdr[1]
      if not m[6] or h[2] > m[2] then
        m[6] = true
        if h[2] > m[2] then m[2] = h[2] end
        dirty[1] = true
      end
    end
    if i == 1 and h[1] ~= nil and h[1] < horizon then
      -- compact: drop expired records (once an hour at most per account: the header has the oldest time);
      -- the append counts restart from what is left
      local parts, mn, cin, cout = {BLANK}, nil, 0, 0
      for p = HS + 1, #v, RS do
        local s = u32(v, p + 17)
        if s >= horizon then
          parts[#parts + 1] = ssub(v, p, p + RS - 1)
          if mn == nil or s < mn then mn = s end
          if band(sbyte(v, p + 8), 4) ~= 0 then cin = cin + 1 else cout = cout + 1 end
        end
      end
      v = tconcat(parts)
      h = {mn, h[2], cin, cout, h[5], h[6], h[7], h[8]}
      dirty[i] = true
    end
    val[i] = v
    hdr[i] = h
    tail[i] = {}
  end
  return v
end

local function purgedUpTo()
  if purged == nil then
    local m = hdr[1]
    if m[7] and not m[8] then
      -- the main log says the account has no purge mark: no GET
      purged = -1
    else
      local p = redis.call('GET', KEYS[base + 2])
      purged = p and tonumber(p) or -1
      if p then m[8] = true end
    end
  end
  return purged
end

-- Moves appended records into the strings, so that searches and edits see them.
local function flush()
  for i, t in pairs(tail) do
    if #t > 0 then
      val[i] = val[i] .. tconcat(t)
      tail[i] = {}
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
end

local function store()
  for i, _ in pairs(dirty) do
    local v = val[i]
    local h = hdr[i]
    -- A log that removals emptied keeps its header (until it expires): its append counts decide where later
    -- records land, and must not restart at a moment that depends on how batches were cut or overlapped.
    -- A purge deletes the purged account's logs outright.
    if #v == HS and (purging or h[1] == nil) then
      redis.call('DEL', KEYS[base + i])
    else
      local cin, out = h[3] > 32767 and 32767 or h[3], h[4] > 32767 and 32767 or h[4]
      if i == 1 and h[8] then cin = cin + 32768 end
      if i == 1 and h[6] then out = out + 32768 end
      local head = pack('>I4I4', h[1], h[2]) .. h[5] .. pack('>I2I2', cin, out)
      local at = (floor(h[2] / 3600) + 1) * 3600 + keep
      if #v <= 512 then
        redis.call('SET', KEYS[base + i], head .. ssub(v, HS + 1), 'EXAT', at)
      else
        -- the value as it is, then its header in place (within its length: no reallocation)
        redis.call('SET', KEYS[base + i], v, 'EXAT', at)
        redis.call('SETRANGE', KEYS[base + i], 0, head)
      end
    end
  end
end

local codes, deleted = {}, {}
local n = 0
base = 0
local at = 1
while at <= #blob do
  local nkeys = sbyte(blob, at)
  local nops = u16(blob, at + 1)
  at = at + 3
  val, hdr, dirty, tail, pendIn, pendOut = {}, {}, {}, {}, {}, {}
  purged, purging = nil, false
  for o = at, at + (nops - 1) * OS, OS do
    local code = ssub(blob, o, o)
    local hk = sbyte(blob, o + 1)
    local rec = ssub(blob, o + 2, o + OS - 1)
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
        if pendIn[needle] or find(val[1], needle, 1) or (sk > 0 and find(val[sk], needle, 1))
          or find(val[1], revoked, 1) or (sk > 0 and find(val[sk], revoked, 1)) then
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
          local v = val[k == 1 and 1 or sk]
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
        local v = val[i]
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
        redis.call('SET', KEYS[base + 2], sec, 'EXAT', sec + keep)
        hdr[1][8] = true
        dirty[1] = true
      end
      if code == 'z' then
        flush()
        local i = hk > 0 and hk or 1
        local v = val[i]
        local parts = {BLANK}
        for p = HS + 1, #v, RS do
          if u32(v, p + 17) > sec then parts[#parts + 1] = ssub(v, p, p + RS - 1) end
        end
        if (#parts - 1) * RS < #v - HS then
          val[i] = tconcat(parts)
          dirty[i] = true
          r = '1'
        end
      end
    else
      -- 'r' / 'x': remove the record whose first 17 bytes match; 'v': mark that record revoked
      flush()
      local needle = ssub(rec, 1, 17)
      for k = 1, (sk > 0 and 2 or 1) do
        local i = k == 1 and 1 or sk
        local q = find(val[i], needle, 1)
        if q then
          if code == 'v' then
            local v = val[i]
            val[i] = ssub(v, 1, q + 7) .. schar(sbyte(v, q + 8) + 8) .. ssub(v, q + 9)
            dirty[i] = true
          else
            remove(i, q)
          end
          r = '1'
          break
        end
      end
    end
    codes[#codes + 1] = r
    n = n + 1
  end
  flush()
  store()
  at = at + nops * OS
  base = base + nkeys
end
return {tconcat(codes), tconcat(deleted)}
`

export interface IndexCommands {
  indexApply(numKeys: number, ...args: (string | Buffer | number)[]): Promise<unknown[]>
}

/** Registers the index scripts on a connection (idempotent; ioredis loads them with EVALSHA/EVAL). */
export function defineIndexCommands(redis: Redis): Redis & IndexCommands {
  const r = redis as Redis & Partial<IndexCommands>
  if (typeof r.indexApply !== 'function') redis.defineCommand('indexApply', { lua: APPLY_LUA })
  return redis as Redis & IndexCommands
}

declare module 'ioredis' {
  interface ChainableCommander {
    indexApply(numKeys: number, ...args: (string | Buffer | number)[]): this
    indexApplyBuffer(numKeys: number, ...args: (string | Buffer | number)[]): this
  }
}
