-- Trims the entries that the indexer's group, and the bot's where it exists, have read and acknowledged:
-- everything below a group's oldest pending entry, or up to its last delivered id when nothing is pending
-- (see trimRead in stream-lag.ts). One script, so that the groups are read on the node that trims: read
-- apart, a reading from a primary that then failed could trim entries its promoted replica never delivered.
-- KEYS: 1 the stream
-- ARGV: 1 the indexer's group, 2 the bot's group
-- Returns the number of entries removed.
local function fields(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return ms, seq
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if am ~= bm then return tonumber(am) < tonumber(bm) end
  return tonumber(as) < tonumber(bs)
end
-- The first id a group still needs: its oldest pending entry, else the one after its last delivered.
local function keepFrom(group, last)
  local summary = redis.call('XPENDING', KEYS[1], group)
  if summary[1] > 0 then return summary[2] end
  local ms, seq = parse(last)
  return ms .. '-' .. tostring(tonumber(seq) + 1)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local threshold = nil
local indexer = false
for _, flat in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local g = fields(flat)
  if g['name'] == ARGV[1] or g['name'] == ARGV[2] then
    if g['last-delivered-id'] == '0-0' then return 0 end
    if g['name'] == ARGV[1] then indexer = true end
    local keep = keepFrom(g['name'], g['last-delivered-id'])
    if threshold == nil or less(keep, threshold) then threshold = keep end
  end
end
if not indexer then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', threshold)
