import { createHash, randomBytes } from 'node:crypto'
import { DAY_MS } from '@circles/core'
import { DidCache, didId, resolveIds } from '@circles/interaction-index'
import {
  encodeDayBlobRows,
  encodePlainDayBlob,
  forEachPackedRecord,
  type PackedRecord,
  type RecordColumns,
  recordSize,
} from '@circles/long-term'
import type { RedisSchema } from '@circles/redis-schema'
import { Frame, type FrameSender, luaSource, withLuaSource } from '@circles/redis-wire'
import type { ChainableCommander, Redis } from 'ioredis'
import type { DayCounts, DayRows } from './day-counts.js'
import { rememberIn, sendFrame } from './wire-calls.js'

// The backfilled day blobs of one source repo: the account's own `bs` hash (only its own repo writes it:
// replaced whole, in one MULTI) and one `br` hash per partner (many sources write those: each call replaces
// the source's records only, lua/backfill-received.lua). Both are replacements, not additions, so a rerun
// after a kill -9, or two runs at once, leave what one run leaves.
//
// Order: the DID table entries first (every id a blob holds must resolve: the roll-up's fold does the same,
// with the same epoch check against a table sweep reclaiming an entry in between), then `bs` (it names the
// partners, so a rerun finds the `br` hashes of partners the repo no longer has and strips them), then
// the `br` hashes. Each day written also gets a new token in the account's `lt-version` hash (one per run),
// in the same MULTI or script as its blob: readers that know a day by its blobs' lengths (the API's history
// memo) learn of a replacement of the same length from it.

const RECEIVED_LUA = luaSource(import.meta.url, 'backfill-received')
const RECEIVED_SHA = createHash('sha1').update(RECEIVED_LUA).digest('hex')
/** Script calls per frame, and frames in flight at once: Redis runs one while the next is built. */
const PER_FRAME = 1000
const IN_FLIGHT = 3

export interface DayWriteResult {
  /** Day fields of the account's `bs` hash, partners whose `br` got records, partners stripped only. */
  days: number
  partners: number
  stripped: number
}

/**
 * The account's `bs` fields: per day, the (compact) blob of every partner's records that day, made from columns (`encodeDayBlobRows`), without an object per record.
 * `ids` holds 8 bytes per partner index of `rows.names`.
 */
function sentFields(rows: DayRows, ids: Buffer): Map<number, Buffer> {
  const n = rows.length
  const columns: RecordColumns = { kind: rows.kind, count: rows.count, partner: rows.partner, ids }
  const dayOf = rows.day
  let first = Number.POSITIVE_INFINITY
  let last = Number.NEGATIVE_INFINITY
  for (let r = 0; r < n; r++) {
    const day = dayOf[r] as number
    if (day < first) first = day
    if (day > last) last = day
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
 * number (3 bytes), the length of its records (1 byte) and the records naming `source`; and the newest
 * day. The partner's rows are `rows[from, to)`, in order of day and kind.
 */
function receivedPacked(
  rows: DayRows,
  from: number,
  to: number,
  source: Buffer,
): [packed: Buffer, newest: number] {
  const records: PackedRecord[] = []
  let days = 0
  for (let r = from; r < to; r++) {
    records.push({ kind: rows.kind[r] as number, partner: source, count: rows.count[r] as number })
    if (r === from || rows.day[r] !== rows.day[r - 1]) days++
  }
  const blob = encodePlainDayBlob(0, records)
  const out = Buffer.allocUnsafe(blob.length - 1 + 4 * days)
  let o = 0
  let at = 1
  for (let i = from; i < to; ) {
    const day = rows.day[i] as number
    if (!(day >= 0 && day < MAX_DAY))
      throw new RangeError(`day ${day} is out of the day blobs' range`)
    let span = 0
    let j = i
    for (; j < to && rows.day[j] === day; j++) span += recordSize(records[j - from] as PackedRecord)
    out[o] = day >>> 16
    out[o + 1] = (day >>> 8) & 0xff
    out[o + 2] = day & 0xff
    out[o + 3] = span
    o += 4 + blob.copy(out, o + 4, at, at + span)
    at += span
    i = j
  }
  return [out, rows.day[to - 1] as number]
}

/** A long-term hash expires one retention after its newest day, as the roll-up's do. */
function expireAt(day: number, retentionDays: number): number {
  return (day + retentionDays + 1) * DAY_MS
}

/**
 * The partners' ids the account's current `bs` hash names (what a previous run wrote): read by the fold
 * beside its hidden checks, in the same round trip, and handed to `writeDayBlobs`.
 */
export async function previousPartners(
  wire: FrameSender,
  schema: RedisSchema,
  did: string,
): Promise<Set<string>> {
  const frame = new Frame(256)
  frame.call('HGETALL', schema.longTerm(did, 'bs'))
  const fields = (await sendFrame(wire, frame))[0] as Buffer[]
  const ids = new Set<string>()
  for (let i = 1; i < fields.length; i += 2) {
    forEachPackedRecord(fields[i] as Buffer, (r) => ids.add(r.partner.toString('latin1')))
  }
  return ids
}

async function exec(pipe: ChainableCommander): Promise<void> {
  for (const [err] of (await pipe.exec()) ?? []) if (err) throw withLuaSource(err)
}

/** An epoch reply (a Buffer from the wire, or null) as `redis.get` would give it. */
function epochOf(reply: unknown): string | null {
  return reply === null || reply === undefined ? null : String(reply)
}

/**
 * Writes one source repo's day blobs (see above). The bulk of the commands (DID table entries, the
 * partners' script calls) go on `wire`, the `bs` MULTI through `redis`; each step awaits the one before.
 */
export async function writeDayBlobs(
  redis: Redis,
  wire: FrameSender,
  schema: RedisSchema,
  did: string,
  days: DayCounts,
  opts: { retentionDays: number; previous: ReadonlySet<string> },
): Promise<DayWriteResult> {
  const source = didId(did)
  const sentKey = schema.longTerm(did, 'bs')
  const rows = days.rows()
  const partners = days.keys()
  // 8 bytes per partner index; a partner left out (no rows) keeps zeros nothing points at.
  const ids = Buffer.alloc(8 * rows.names.length)
  const newIds = new Set<string>()
  for (let r = 0; r < rows.length; r++) {
    const p = rows.partner[r] as number
    if (r > 0 && rows.partner[r - 1] === p) continue
    const id = didId(rows.names[p] as string)
    id.copy(ids, 8 * p)
    newIds.add(id.toString('latin1'))
  }
  const byDay = sentFields(rows, ids)

  const gone = [...opts.previous].filter((id) => !newIds.has(id))
  const goneDids = [
    ...(await resolveIds(redis, schema, gone, new DidCache(gone.length + 1))).values(),
  ]

  const names = [did, ...partners]
  const remember = new Frame(4096 + 128 * names.length)
  remember.call('GET', schema.didTableEpoch)
  rememberIn(remember, schema, names)
  const epoch = epochOf((await sendFrame(wire, remember))[0])

  const token = randomBytes(8).toString('hex')
  const sent = redis.multi().del(sentKey)
  if (byDay.size > 0) {
    const fields: (string | Buffer)[] = []
    const tokens: string[] = []
    for (const [day, blob] of byDay) {
      fields.push(String(day), blob)
      tokens.push(String(day), token)
    }
    const expire = expireAt(Math.max(...byDay.keys()), opts.retentionDays)
    sent.hset(sentKey, ...fields).pexpireat(sentKey, expire)
    // As lua/backfill-received.lua: the tokens' expiry only moves later, so they outlive both hashes
    // (NX gives a new hash one, GT moves an older one later).
    const version = schema.longTermVersion(did)
    sent
      .hset(version, ...tokens)
      .pexpireat(version, expire, 'NX')
      .pexpireat(version, expire, 'GT')
  }
  await exec(sent)

  await writeReceived(wire, schema, { source, token }, rows, goneDids, opts.retentionDays)
  // A table sweep that reclaimed an entry between the names and the blobs moved the epoch: write them again.
  const check = new Frame(256)
  check.call('GET', schema.didTableEpoch)
  if (epochOf((await sendFrame(wire, check))[0]) !== epoch) {
    const again = new Frame(4096 + 128 * names.length)
    rememberIn(again, schema, names)
    await sendFrame(wire, again)
  }
  return { days: byDay.size, partners: partners.length, stripped: goneDids.length }
}

/**
 * Every partner's `br` share of the source, one script call each (each key its own slot: cluster-safe),
 * in frames of which a few are in flight at once: Redis runs one while the next is built. The first
 * frame loads the script (a no-op when Redis has it), so the calls after it find it.
 */
async function writeReceived(
  wire: FrameSender,
  schema: RedisSchema,
  { source, token }: { source: Buffer; token: string },
  rows: DayRows,
  goneDids: string[],
  retentionDays: number,
): Promise<void> {
  const inFlight: Promise<unknown[]>[] = []
  let frame = new Frame(1 << 18)
  frame.call('SCRIPT', 'LOAD', RECEIVED_LUA)
  const send = () => {
    const sent = sendFrame(wire, frame)
    // Waited for below; until then a failure must not count as unhandled.
    sent.catch(() => {})
    inFlight.push(sent)
    frame = new Frame(1 << 18)
  }
  const call = async (name: string, expire: string, packed: Buffer | string) => {
    const keys = [schema.longTerm(name, 'br'), schema.longTermVersion(name)] as const
    frame.call('EVALSHA', RECEIVED_SHA, 2, ...keys, source, expire, packed, token)
    if (frame.commands < PER_FRAME) return
    send()
    if (inFlight.length >= IN_FLIGHT) await inFlight.shift()
  }
  for (let from = 0; from < rows.length; ) {
    const p = rows.partner[from] as number
    let to = from + 1
    while (to < rows.length && rows.partner[to] === p) to++
    const [packed, newest] = receivedPacked(rows, from, to, source)
    await call(rows.names[p] as string, String(expireAt(newest, retentionDays)), packed)
    from = to
  }
  for (const partner of goneDids) await call(partner, '0', '')
  send()
  // (On a failure above, what is still in flight finishes on its own: the writes are replacements, a
  // rerun makes them again.)
  for (const sent of inFlight) await sent
}
