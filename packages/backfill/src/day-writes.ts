import { DAY_MS } from '@circles/core'
import { DidCache, didId, rememberDids, resolveIds } from '@circles/interaction-index'
import {
  encodeDayBlob,
  encodeDayBlobRows,
  forEachPackedRecord,
  type PackedRecord,
  type RecordColumns,
  recordSize,
} from '@circles/long-term'
import type { RedisSchema } from '@circles/redis-schema'
import { luaSource, withLuaSource } from '@circles/redis-wire'
import type { ChainableCommander, Redis } from 'ioredis'
import type { DayCounts } from './classify.js'

// The backfilled day blobs of one source repo: the account's own `bs` hash (only its own repo writes it:
// replaced whole, in one MULTI) and one `br` hash per partner (many sources write those: each call replaces
// the source's records only, lua/backfill-received.lua). Both are replacements, not additions, so a rerun
// after a kill -9, or two runs at once, leave what one run leaves.
//
// Order: the DID table entries first (every id a blob holds must resolve: the roll-up's fold does the same,
// with the same epoch check against a table sweep reclaiming an entry in between), then `bs` (it names the
// partners, so a rerun finds the `br` hashes of partners the repo no longer has and strips them), then
// the `br` hashes.

const RECEIVED_LUA = luaSource(import.meta.url, 'backfill-received')
const PIPELINE = 1000
const IN_FLIGHT = 3

type WithScript = Redis & {
  backfillReceived(key: string, ...args: (string | number | Buffer)[]): Promise<number>
}

function withScript(redis: Redis): WithScript {
  const r = redis as WithScript
  if (typeof r.backfillReceived !== 'function') {
    redis.defineCommand('backfillReceived', { numberOfKeys: 1, lua: RECEIVED_LUA })
  }
  return r
}

export interface DayWriteResult {
  /** Day fields of the account's `bs` hash, partners whose `br` got records, partners stripped only. */
  days: number
  partners: number
  stripped: number
}

/**
 * The account's `bs` fields: per day, the blob of every partner's records that day (in the order of the
 * partners, then of their keys), made from columns (`encodeDayBlobRows`), without an object per record.
 */
function sentFields(days: DayCounts, ids: Map<string, Buffer>): Map<number, Buffer> {
  let n = 0
  for (const m of days.values()) n += m.size
  const columns: RecordColumns = {
    kind: new Uint8Array(n),
    count: new Uint32Array(n),
    partner: new Int32Array(n),
    ids: Buffer.allocUnsafe(8 * days.size),
  }
  const dayOf = new Float64Array(n)
  let row = 0
  let p = 0
  let first = Number.POSITIVE_INFINITY
  let last = Number.NEGATIVE_INFINITY
  for (const [partner, m] of days) {
    ;(ids.get(partner) as Buffer).copy(columns.ids, 8 * p)
    for (const [k, count] of m) {
      const day = Math.floor(k / 4)
      columns.kind[row] = k % 4
      columns.count[row] = count
      columns.partner[row] = p
      dayOf[row++] = day
      if (day < first) first = day
      if (day > last) last = day
    }
    p++
  }
  // Rows by day, a counting sort (stable: each day keeps the rows' order).
  const out = new Map<number, Buffer>()
  if (n === 0) return out
  const starts = new Int32Array(last - first + 2)
  for (let r = 0; r < n; r++) {
    const at = (dayOf[r] as number) - first + 1
    starts[at] = (starts[at] as number) + 1
  }
  for (let d = 1; d < starts.length; d++)
    starts[d] = (starts[d] as number) + (starts[d - 1] as number)
  const order = new Int32Array(n)
  const next = starts.slice()
  for (let r = 0; r < n; r++) {
    const at = (dayOf[r] as number) - first
    order[next[at] as number] = r
    next[at] = (next[at] as number) + 1
  }
  for (let d = 0; d < starts.length - 1; d++) {
    const from = starts[d] as number
    const to = starts[d + 1] as number
    if (to > from) out.set(first + d, encodeDayBlobRows(0, columns, order, from, to))
  }
  return out
}

/** Days fit the script's 3 bytes (year 47900), a day's records (4 kinds at most) its 1-byte length. */
const MAX_DAY = 1 << 24

/**
 * One partner's new `br` records for the script (lua/backfill-received.lua, ARGV[3]): per day, its
 * number (3 bytes), the length of its records (1 byte) and the records naming `source`; and the newest day.
 */
function receivedPacked(m: Map<number, number>, source: Buffer): [packed: Buffer, newest: number] {
  // Keys are day * 4 + kind: in order, a day's records are together.
  const keys = [...m.keys()].sort((a, b) => a - b)
  const records = keys.map((k) => ({ kind: k % 4, partner: source, count: m.get(k) as number }))
  const blob = encodeDayBlob(0, records)
  let days = 0
  for (let i = 0; i < keys.length; i++) {
    if (i === 0 || Math.floor((keys[i] as number) / 4) !== Math.floor((keys[i - 1] as number) / 4))
      days++
  }
  const out = Buffer.allocUnsafe(blob.length - 1 + 4 * days)
  let o = 0
  let at = 1
  for (let i = 0; i < keys.length; ) {
    const day = Math.floor((keys[i] as number) / 4)
    if (!(day >= 0 && day < MAX_DAY))
      throw new RangeError(`day ${day} is out of the day blobs' range`)
    let span = 0
    let j = i
    for (; j < keys.length && Math.floor((keys[j] as number) / 4) === day; j++)
      span += recordSize(records[j] as PackedRecord)
    out[o] = day >>> 16
    out[o + 1] = (day >>> 8) & 0xff
    out[o + 2] = day & 0xff
    out[o + 3] = span
    o += 4 + blob.copy(out, o + 4, at, at + span)
    at += span
    i = j
  }
  return [out, Math.floor((keys[keys.length - 1] as number) / 4)]
}

/** A long-term hash expires one retention after its newest day, as the roll-up's do. */
function expireAt(day: number, retentionDays: number): number {
  return (day + retentionDays + 1) * DAY_MS
}

/** The partners' ids the account's current `bs` hash names (what a previous run wrote). */
async function previousPartners(redis: Redis, key: string): Promise<Set<string>> {
  const ids = new Set<string>()
  const h = await redis.hgetallBuffer(key)
  for (const blob of Object.values(h)) {
    forEachPackedRecord(blob, (r) => ids.add(r.partner.toString('latin1')))
  }
  return ids
}

async function exec(pipe: ChainableCommander): Promise<void> {
  for (const [err] of (await pipe.exec()) ?? []) if (err) throw withLuaSource(err)
}

export async function writeDayBlobs(
  redis: Redis,
  schema: RedisSchema,
  did: string,
  days: DayCounts,
  opts: { retentionDays: number },
): Promise<DayWriteResult> {
  const source = didId(did)
  const sentKey = schema.longTerm(did, 'bs')
  const ids = new Map([...days.keys()].map((p) => [p, didId(p)]))
  const byDay = sentFields(days, ids)

  const newIds = new Set([...ids.values()].map((id) => id.toString('latin1')))
  const gone = [...(await previousPartners(redis, sentKey))].filter((id) => !newIds.has(id))
  const goneDids = [
    ...(await resolveIds(redis, schema, gone, new DidCache(gone.length + 1))).values(),
  ]

  const epoch = await redis.get(schema.didTableEpoch)
  const names = [did, ...days.keys()]
  await rememberDids(redis, schema, names)

  const sent = redis.multi().del(sentKey)
  if (byDay.size > 0) {
    const fields: (string | Buffer)[] = []
    for (const [day, blob] of byDay) fields.push(String(day), blob)
    sent.hset(sentKey, ...fields)
    sent.pexpireat(sentKey, expireAt(Math.max(...byDay.keys()), opts.retentionDays))
  }
  await exec(sent)

  await writeReceived(withScript(redis), schema, source, days, goneDids, opts.retentionDays)
  // A table sweep that reclaimed an entry between the names and the blobs moved the epoch: write them again.
  if ((await redis.get(schema.didTableEpoch)) !== epoch) await rememberDids(redis, schema, names)
  return { days: byDay.size, partners: days.size, stripped: goneDids.length }
}

/**
 * Every partner's `br` share of the source, one script call each (each key its own slot: cluster-safe),
 * in pipelines of which a few are in flight at once: Redis runs one while the next is built.
 */
async function writeReceived(
  r: WithScript,
  schema: RedisSchema,
  source: Buffer,
  days: DayCounts,
  goneDids: string[],
  retentionDays: number,
): Promise<void> {
  const inFlight: Promise<void>[] = []
  let pipe = r.pipeline() as unknown as WithScript & ChainableCommander
  const flush = async (force: boolean) => {
    if ((pipe.length < PIPELINE && !force) || pipe.length === 0) return
    const sent = exec(pipe)
    // Waited for below; until then a failure must not count as unhandled.
    sent.catch(() => {})
    inFlight.push(sent)
    pipe = r.pipeline() as unknown as WithScript & ChainableCommander
    if (inFlight.length >= IN_FLIGHT) await inFlight.shift()
  }
  for (const [partner, m] of days) {
    const [packed, newest] = receivedPacked(m, source)
    const expire = String(expireAt(newest, retentionDays))
    pipe.backfillReceived(schema.longTerm(partner, 'br'), source, expire, packed)
    await flush(false)
  }
  for (const partner of goneDids) {
    pipe.backfillReceived(schema.longTerm(partner, 'br'), source, '0')
    await flush(false)
  }
  await flush(true)
  // (On a failure above, what is still in flight finishes on its own: the writes are replacements, a
  // rerun makes them again.)
  for (const sent of inFlight) await sent
}
