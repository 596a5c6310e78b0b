import { DAY_MS, HOUR_MS, INTERACTION_KINDS, type InteractionKind, isValidDid } from '@circles/core'
import {
  forEachPackedRecord,
  kindIndex,
  mergeDayBlob,
  type PackedRecord,
  packDid,
  rememberDids,
} from '@circles/interaction-index'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { HourRow, LiveHours } from './live-source.js'

// Roll-up: fold one completed hour of the live index into the long-term daily aggregates, exactly once.
//
// Exactly-once argument (see README): hours are folded one at a time, in increasing order, by one runner
// (a lock). Each (account, direction, day) blob carries a mark = 1 + the last hour-of-day folded into it,
// written in the same HSET as the counts. Folding hour H into a blob whose mark is already >= H's skips it,
// so a run that crashed half-way can simply be run again: blobs it reached are skipped, the others get H.
// Only after every blob has H does the cursor move to H (the per-hour marker), and only after that is the
// hour freed in the live index; a crash between the two just frees it on the next run. Nothing is read
// from the live index after it was freed, and nothing is freed before it was folded.

/**
 * Lua, one account (both keys share its hash tag, so this is one slot): for each direction with a blob,
 * a new day field is written; a field already at or past this hour is left alone (0); an older field is
 * returned for a merge in Node (rare: only the first fold of an account's day can skip it). The expiry is
 * pushed out to the day's end of retention. KEYS: sent, received. ARGV: day, mark, sent blob or '',
 * received blob or '', expireAt ms.
 */
const FOLD_LUA = `
local out = {}
for i = 1, 2 do
  local blob = ARGV[2 + i]
  if blob == '' then
    out[i] = -1
  else
    local cur = redis.call('HGET', KEYS[i], ARGV[1])
    if not cur then
      redis.call('HSET', KEYS[i], ARGV[1], blob)
      redis.call('PEXPIREAT', KEYS[i], ARGV[5])
      out[i] = 1
    elseif string.byte(cur, 1) >= tonumber(ARGV[2]) then
      out[i] = 0
    else
      out[i] = cur
    end
  end
end
return out
`

type FoldRedis = Redis & {
  foldDayBuffer(
    sentKey: string,
    receivedKey: string,
    day: string,
    mark: number,
    sent: Buffer | string,
    received: Buffer | string,
    expireAt: number,
  ): Promise<(number | Buffer)[]>
}

function withFold(redis: Redis): FoldRedis {
  const r = redis as FoldRedis
  if (typeof r.foldDayBuffer !== 'function') {
    redis.defineCommand('foldDay', { numberOfKeys: 2, lua: FOLD_LUA })
  }
  return r
}

export interface RollupOptions {
  /** Days a long-term day blob is kept after its day. @default 90 */
  retentionDays: number
  /** Accounts per write pipeline. @default 1000 */
  chunk?: number
  /** Called between write chunks; a test throws from it to simulate a crash half-way. */
  onChunk?: (done: number) => void | Promise<void>
  /** Called between read batches and write chunks alike (the job extends its lock there). */
  onProgress?: () => Promise<void>
}

export interface HourRollupResult {
  hour: number
  rows: number
  /** Rows skipped as malformed (bad DID, kind or count). */
  skipped: number
  /** Day blobs written for the first time, merged into, and skipped as already holding this hour. */
  created: number
  merged: number
  alreadyDone: number
  /** (pair, kind) records written, both directions. */
  records: number
  /** Time spent reading the hour from the live index, and folding it into the aggregates. */
  loadMs: number
  foldMs: number
}

const KIND_OK = new Set<string>(INTERACTION_KINDS)

/** Rows of one hour, DIDs interned to indexes, in growable typed arrays (5M rows fit in ~70 MB). */
export class HourTable {
  ids = new Map<string, number>()
  dids: string[] = []
  n = 0
  author = new Int32Array(1 << 16)
  subject = new Int32Array(1 << 16)
  kind = new Uint8Array(1 << 16)
  count = new Uint32Array(1 << 16)

  intern(did: string): number {
    let id = this.ids.get(did)
    if (id === undefined) {
      id = this.dids.length
      this.ids.set(did, id)
      this.dids.push(did)
    }
    return id
  }

  push(a: number, s: number, k: number, c: number): void {
    if (this.n === this.author.length) {
      const grow = <T extends Int32Array | Uint8Array | Uint32Array>(
        arr: T,
        make: (n: number) => T,
      ) => {
        const next = make(arr.length * 2)
        next.set(arr)
        return next
      }
      this.author = grow(this.author, (n) => new Int32Array(n))
      this.subject = grow(this.subject, (n) => new Int32Array(n))
      this.kind = grow(this.kind, (n) => new Uint8Array(n))
      this.count = grow(this.count, (n) => new Uint32Array(n))
    }
    this.author[this.n] = a
    this.subject[this.n] = s
    this.kind[this.n] = k
    this.count[this.n] = c
    this.n++
  }

  /** Row indexes grouped by `by` (counting sort): rows of account i are order[start[i]..start[i+1]). */
  groupBy(by: Int32Array): { order: Int32Array; start: Int32Array } {
    const accounts = this.dids.length
    const start = new Int32Array(accounts + 1)
    for (let i = 0; i < this.n; i++) (start[(by[i] as number) + 1] as number)++
    for (let i = 0; i < accounts; i++)
      start[i + 1] = (start[i + 1] as number) + (start[i] as number)
    const fill = start.slice(0, accounts)
    const order = new Int32Array(this.n)
    for (let i = 0; i < this.n; i++) {
      const a = by[i] as number
      order[fill[a] as number] = i
      fill[a] = (fill[a] as number) + 1
    }
    return { order, start }
  }
}

/** Reads one hour of the live index into a table, skipping (and counting) malformed rows. */
export async function loadHour(
  source: LiveHours,
  hour: number,
  onProgress?: () => Promise<void>,
): Promise<{ table: HourTable; skipped: number }> {
  const table = new HourTable()
  let skipped = 0
  await source.scanHour(hour, async (rows: HourRow[]) => {
    await onProgress?.()
    for (const row of rows) {
      if (
        !KIND_OK.has(row.kind) ||
        !Number.isSafeInteger(row.count) ||
        row.count <= 0 ||
        row.author === row.subject ||
        !isValidDid(row.author) ||
        !isValidDid(row.subject)
      ) {
        skipped++
        continue
      }
      table.push(
        table.intern(row.author),
        table.intern(row.subject),
        kindIndex(row.kind as InteractionKind),
        row.count,
      )
    }
  })
  return { table, skipped }
}

/** 8-byte DID ids of a table's accounts in one arena: no Buffer object per account. */
class PackedIds {
  readonly arena: Buffer
  constructor(dids: readonly string[]) {
    this.arena = Buffer.allocUnsafe(8 * dids.length)
    dids.forEach((d, i) => {
      packDid(d).copy(this.arena, 8 * i)
    })
  }
}

function varintLen(n: number): number {
  let len = 1
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) len++
  return len
}

/** The day blob of one account's rows (order[from..to)) in one direction, encoded straight from the table. */
function encodeRows(
  table: HourTable,
  packed: PackedIds,
  other: Int32Array,
  order: Int32Array,
  from: number,
  to: number,
  mark: number,
): Buffer {
  let size = 1
  for (let j = from; j < to; j++) {
    const c = table.count[order[j] as number] as number
    size += 1 + (c < 64 ? 0 : varintLen(c)) + 8
  }
  const out = Buffer.allocUnsafe(size)
  out[0] = mark
  let o = 1
  for (let j = from; j < to; j++) {
    const row = order[j] as number
    const p = other[row] as number
    const c = table.count[row] as number
    const small = c < 64
    out[o++] = ((table.kind[row] as number) << 6) | (small ? c : 0)
    if (!small) {
      let v = c
      while (v >= 0x80) {
        out[o++] = (v % 0x80) | 0x80
        v = Math.floor(v / 0x80)
      }
      out[o++] = v
    }
    o += packed.arena.copy(out, o, 8 * p, 8 * p + 8)
  }
  return out
}

function recordsOf(blob: Buffer): PackedRecord[] {
  const out: PackedRecord[] = []
  forEachPackedRecord(blob, (r) => out.push(r))
  return out
}

/** Folds one hour into the long-term aggregates (idempotent per day blob; see the argument above). */
export async function foldHour(
  redis: Redis,
  schema: RedisSchema,
  hour: number,
  table: HourTable,
  opts: RollupOptions,
): Promise<Omit<HourRollupResult, 'rows' | 'skipped' | 'loadMs' | 'foldMs'>> {
  const fold = withFold(redis)
  const day = Math.floor((hour * HOUR_MS) / DAY_MS)
  const dayField = String(day)
  const mark = (hour % 24) + 1
  const expireAt = (day + opts.retentionDays + 1) * DAY_MS
  const chunk = opts.chunk ?? 1000
  const packed = new PackedIds(table.dids)
  // Names first: every partner id a blob will hold must resolve through the DID table.
  await rememberDids(redis, schema, table.dids)
  const sent = table.groupBy(table.author)
  const received = table.groupBy(table.subject)
  const accounts = table.dids.length
  const result = { hour, created: 0, merged: 0, alreadyDone: 0, records: 0 }
  const inFlight = new Set<Promise<void>>()
  let failure: unknown = null

  // One chunk's replies: count them, and merge where an earlier hour of the same day is already there.
  async function settle(
    pipe: ReturnType<Redis['pipeline']>,
    pending: { id: number; blobs: [Buffer | null, Buffer | null]; n: [number, number] }[],
  ): Promise<void> {
    const replies = (await pipe.exec()) ?? []
    const merges = fold.pipeline()
    let mergeCount = 0
    for (let i = 0; i < replies.length; i++) {
      const [err, reply] = replies[i] as [Error | null, (number | Buffer)[]]
      if (err) throw err
      const item = pending[i] as (typeof pending)[number]
      for (let d = 0; d < 2; d++) {
        const r = reply[d]
        const blob = item.blobs[d]
        if (r === -1 || !blob) continue
        const n = item.n[d] as number
        if (r === 1) {
          result.created++
          result.records += n
        } else if (r === 0) result.alreadyDone++
        else {
          const key = schema.longTerm(table.dids[item.id] as string, d === 0 ? 's' : 'r')
          merges.hset(key, dayField, mergeDayBlob(r as Buffer, mark, recordsOf(blob)))
          merges.pexpireat(key, expireAt)
          mergeCount++
          result.merged++
          result.records += n
        }
      }
    }
    if (mergeCount > 0) {
      for (const [err] of (await merges.exec()) ?? []) if (err) throw err
    }
  }

  let done = 0
  for (let first = 0; first < accounts; first += chunk) {
    const last = Math.min(accounts, first + chunk)
    const pipe = fold.pipeline()
    const pending: { id: number; blobs: [Buffer | null, Buffer | null]; n: [number, number] }[] = []
    for (let id = first; id < last; id++) {
      const s0 = sent.start[id] as number
      const s1 = sent.start[id + 1] as number
      const r0 = received.start[id] as number
      const r1 = received.start[id + 1] as number
      const blobs: [Buffer | null, Buffer | null] = [
        s1 > s0 ? encodeRows(table, packed, table.subject, sent.order, s0, s1, mark) : null,
        r1 > r0 ? encodeRows(table, packed, table.author, received.order, r0, r1, mark) : null,
      ]
      const did = table.dids[id] as string
      ;(pipe as unknown as FoldRedis).foldDayBuffer(
        schema.longTerm(did, 's'),
        schema.longTerm(did, 'r'),
        dayField,
        mark,
        blobs[0] ?? '',
        blobs[1] ?? '',
        expireAt,
      )
      pending.push({ id, blobs, n: [s1 - s0, r1 - r0] })
    }
    // A few chunks in flight: Node encodes the next while Redis runs the previous.
    const p = settle(pipe, pending)
      .catch((err) => {
        failure ??= err
      })
      .finally(() => inFlight.delete(p))
    inFlight.add(p)
    if (inFlight.size >= 3) await Promise.race(inFlight)
    if (failure) break
    done = last
    await opts.onChunk?.(done)
    await opts.onProgress?.()
  }
  await Promise.all(inFlight)
  if (failure) throw failure
  return result
}

/** Loads, folds, marks and frees one hour. Safe to call again for the same hour after a crash. */
export async function rollUpHour(
  redis: Redis,
  schema: RedisSchema,
  source: LiveHours,
  hour: number,
  opts: RollupOptions,
): Promise<HourRollupResult> {
  const t0 = performance.now()
  const { table, skipped } = await loadHour(source, hour, opts.onProgress)
  const t1 = performance.now()
  const folded = await foldHour(redis, schema, hour, table, opts)
  const loadMs = Math.round(t1 - t0)
  const foldMs = Math.round(performance.now() - t1)
  // The per-hour marker: every hour up to the cursor is folded. Hours go up one at a time under the lock.
  await redis.set(schema.rollupCursor, String(hour))
  await source.freeHour(hour)
  return { ...folded, rows: table.n, skipped, loadMs, foldMs }
}

/** The last hour folded, or null before the first roll-up. */
export async function readRollupCursor(redis: Redis, schema: RedisSchema): Promise<number | null> {
  const v = await redis.get(schema.rollupCursor)
  if (v === null) return null
  const n = Number(v)
  return Number.isSafeInteger(n) ? n : null
}

export interface RollupRunResult {
  rolled: HourRollupResult[]
  /** Hours that were already folded (a crash between marker and free) and were only freed now. */
  freed: number[]
  cursor: number | null
}

/**
 * Folds every hour that has left the live window, oldest first. `beforeHour` is called before each hour (the job extends its lock there).
 */
export async function runRollup(
  redis: Redis,
  schema: RedisSchema,
  source: LiveHours,
  opts: RollupOptions & {
    now: number
    liveWindowHours: number
    beforeHour?: (hour: number) => Promise<void>
  },
): Promise<RollupRunResult> {
  // The live window is the current hour and the `liveWindowHours - 1` before it (the reader's definition),
  // so hour H has left it once the current hour is H + liveWindowHours.
  const limit = Math.floor(opts.now / HOUR_MS) - opts.liveWindowHours + 1
  let cursor = await readRollupCursor(redis, schema)
  const rolled: HourRollupResult[] = []
  const freed: number[] = []
  const hours = (await source.hours()).filter((h) => h < limit).sort((a, b) => a - b)
  for (const hour of hours) {
    await opts.beforeHour?.(hour)
    if (cursor !== null && hour <= cursor) {
      await source.freeHour(hour)
      freed.push(hour)
      continue
    }
    rolled.push(await rollUpHour(redis, schema, source, hour, opts))
    cursor = hour
  }
  return { rolled, freed, cursor }
}
