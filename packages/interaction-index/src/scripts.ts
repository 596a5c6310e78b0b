import type { Redis } from 'ioredis'

// One script applies a list of operations to ONE account's logs, so every key it touches shares the
// account's hash tag (one slot), and each operation is atomic and idempotent:
//   i  add an inbound record unless present (or the account was purged after it): 1 added, 0 present, -1 refused
//   o  add an outbound record unless present or tombstoned (or purged): 1 / 0 / -1
//   d  delete: mark the outbound records of this rkey and record type deleted and return them (also when they
//      were already deleted, so a redelivered delete repeats its second step); when none exists, add an
//      unknown-delete tombstone so that a create arriving late is refused
//   D  the same without the tombstone (the record is older than the window: its create is never indexed)
//   v  revoke an inbound record (its create was deleted or refused): marked, kept until it expires, so that
//      a repeated phase A finds it and does not append it again: 1 / 0
//   r  remove an inbound record (purge of its partner): 1 removed, 0 absent
//   x  remove an outbound record outright (purge of its partner): 1 / 0
//   m  mark the account purged up to the record's time; z  the same, and drop its records up to then
// KEYS[1] main log, KEYS[2] purge mark, KEYS[3..] spill logs. ARGV[1] horizon (seconds: older records are
// expired), ARGV[2] records per direction the main log takes before spilling, ARGV[3] seconds to keep a record after its hour ends,
// ARGV[4] operations, 25 bytes each: opcode, spill-log key index (one byte, 0 = none), 23-byte record.
// Returns { one result character per operation ('1', '0', '-' for -1), the records deletes marked, each
// after the 4-byte index of its operation }.
// Values are rebuilt in Lua and written once with SET KEEPTTL: APPEND would preallocate up to twice the size.
const APPLY_LUA = `
local RS, OS = 23, 25
local sbyte, ssub, schar, sfind, floor, band, tconcat = string.byte, string.sub, string.char, string.find, math.floor, bit.band, table.concat
local pack = struct.pack
local horizon = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local ops = ARGV[4]
local purged = redis.call('GET', KEYS[2])
purged = purged and tonumber(purged) or -1
-- val[i]: the records of key i (header cut off); hdr[i]: {oldest second, inbound appends, outbound appends}
local val, hdr, dirty, maxsec = {}, {}, {}, {}
-- Records appended by this call wait in tables (one concatenation per key at the end, not one per op);
-- pendIn / pendOut let the existence checks see them without searching.
local tail, pendIn, pendOut = {}, {}, {}

local function u32(s, p)
  local a, b, c, d = sbyte(s, p, p + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end
local function u16(s, p)
  local a, b = sbyte(s, p, p + 1)
  return a * 256 + b
end
local function p32(n)
  return schar(floor(n / 16777216) % 256, floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end

local existed = {}
local function load(i)
  local v = val[i]
  if v == nil then
    local raw = redis.call('GET', KEYS[i])
    existed[i] = raw and true or false
    raw = raw or ''
    local h
    if #raw >= 8 then
      h = {u32(raw, 1), u16(raw, 5), u16(raw, 7)}
      v = ssub(raw, 9)
    else
      h = {nil, 0, 0}
      v = ''
    end
    if i == 1 and h[1] ~= nil and h[1] < horizon then
      -- compact: drop expired records (once an hour at most per account: the header has the oldest time);
      -- the append counts restart from what is left
      local parts, mn, cin, cout = {}, nil, 0, 0
      for p = 1, #v, RS do
        local s = u32(v, p + 17)
        if s >= horizon then
          parts[#parts + 1] = ssub(v, p, p + RS - 1)
          if mn == nil or s < mn then mn = s end
          if band(sbyte(v, p + 8), 4) ~= 0 then cin = cin + 1 else cout = cout + 1 end
        end
      end
      v = tconcat(parts)
      h = {mn, cin, cout}
      dirty[i] = true
    end
    val[i] = v
    hdr[i] = h
    tail[i] = {}
  end
  return v
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
  local p = from
  while true do
    local q = sfind(v, needle, p, true)
    if not q then return nil end
    if (q - 1) % RS == 0 then return q end
    p = q + 1
  end
end

local function append(i, rec, sec, inbound)
  load(i)
  local h = hdr[i]
  if h[1] == nil or sec < h[1] then h[1] = sec end
  if inbound then h[2] = h[2] + 1 else h[3] = h[3] + 1 end
  local t = tail[i]
  t[#t + 1] = rec
  dirty[i] = true
  if maxsec[i] == nil or sec > maxsec[i] then maxsec[i] = sec end
end

-- The main log takes up to cap records of each direction (counted as appended, so that where a record
-- lands depends only on the order of that direction's appends, which is stream order however the stream
-- is cut into batches); the rest go to the spill log of their hour.
local function place(hk, rec, sec, inbound)
  local n = inbound and hdr[1][2] or hdr[1][3]
  if hk > 0 and n >= cap then append(hk, rec, sec, inbound) else append(1, rec, sec, inbound) end
end

local function remove(i, q)
  local v = val[i]
  val[i] = ssub(v, 1, q - 1) .. ssub(v, q + RS)
  dirty[i] = true
end

local codes, deleted = {}, {}
local purging = false
for o = 1, #ops, OS do
  local code = ssub(ops, o, o)
  local hk = sbyte(ops, o + 1)
  local rec = ssub(ops, o + 2, o + OS - 1)
  local sec = u32(rec, 18)
  load(1)
  if hk > 0 then load(hk) end
  local r = '0'
  if code == 'i' then
    local needle = ssub(rec, 1, 17)
    -- the same record revoked (deleted, or its create refused) counts as present: never appended twice
    local revoked = ssub(rec, 1, 8) .. schar(sbyte(rec, 9) + 8) .. ssub(rec, 10, 17)
    if sec <= purged then
      r = '-'
    elseif pendIn[needle] or find(val[1], needle, 1) or (hk > 0 and find(val[hk], needle, 1))
      or find(val[1], revoked, 1) or (hk > 0 and find(val[hk], revoked, 1)) then
      r = '0'
    else
      place(hk, rec, sec, true)
      pendIn[needle] = true
      r = '1'
    end
  elseif code == 'o' then
    if sec <= purged then
      r = '-'
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
      local keys = {1}
      if hk > 0 then keys[2] = hk end
      for _, i in ipairs(keys) do
        local v = val[i]
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
    local keys = {1}
    if hk > 0 then keys[2] = hk end
    for _, i in ipairs(keys) do
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
              deleted[#deleted + 1] = p32((o - 1) / OS) .. ssub(v, q, q + RS - 1)
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
    if sec > purged then
      purged = sec
      redis.call('SET', KEYS[2], sec, 'EXAT', sec + keep)
    end
    if code == 'z' then
      flush()
      local i = hk > 0 and hk or 1
      local v = val[i]
      local parts = {}
      for p = 1, #v, RS do
        if u32(v, p + 17) > sec then parts[#parts + 1] = ssub(v, p, p + RS - 1) end
      end
      if #parts * RS < #v then
        val[i] = tconcat(parts)
        dirty[i] = true
        r = '1'
      end
    end
  else
    -- 'r' / 'x': remove the record whose first 17 bytes match; 'v': mark that inbound record revoked
    flush()
    local needle = ssub(rec, 1, 17)
    local keys = {1}
    if hk > 0 then keys[2] = hk end
    for _, i in ipairs(keys) do
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
end
flush()

for i, _ in pairs(dirty) do
  local v = val[i]
  -- A log that removals emptied keeps its header (until it expires): its append counts decide where later
  -- records land, and must not restart at a moment that depends on how batches were cut or overlapped.
  -- A purge deletes the purged account's logs outright.
  if #v == 0 and (purging or hdr[i][1] == nil) then
    redis.call('DEL', KEYS[i])
  else
    local h = hdr[i]
    local value = pack('>I4I2I2', h[1], h[2] > 65535 and 65535 or h[2], h[3] > 65535 and 65535 or h[3]) .. v
    local m = maxsec[i]
    local want = nil
    if m ~= nil then want = (floor(m / 3600) + 1) * 3600 + keep end
    local e = -2
    if existed[i] then e = redis.call('EXPIRETIME', KEYS[i]) end
    if e == -2 and want ~= nil then
      redis.call('SET', KEYS[i], value, 'EXAT', want)
    else
      redis.call('SET', KEYS[i], value, 'KEEPTTL')
      if want ~= nil and e < want then redis.call('EXPIREAT', KEYS[i], want) end
    end
  end
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
