import type { InteractionKind } from '@circles/core'
import { pipelineFor } from '@circles/redis-wire'
import { resolveIds } from '../did-table.js'
import {
  CODE_DELETED,
  CODE_INBOUND,
  CODE_KINDS,
  CODE_UNKNOWN,
  forEachRecord,
  HOUR_AUTHOR_SHARDS,
  idFromDecimal,
  RECORD_SIZE,
} from '../layout.js'
import type { ReaderContext } from './context.js'

// The live index seen by hours, for the scheduler's roll-up: which hours hold data, every (author,
// subject, kind) count of one hour (found through the hour's author index), and freeing an hour's index.

export interface HourRow {
  author: string
  subject: string
  kind: InteractionKind
  count: number
}

/**
 * One batch of an hour's records as ids, for the roll-up: the authors (DIDs, resolved once per author for
 * their log keys, and 8-byte ids) and, per author a, its records start[a]..start[a+1] (one per record, not
 * summed): the subject's 8-byte id at 8 * r of `subjects` and the kind's index (INTERACTION_KINDS order).
 */
export interface HourIdBatch {
  authors: string[]
  authorIds: Buffer
  start: Int32Array
  subjects: Buffer
  kinds: Uint8Array
}

export interface HourView {
  /** For the scheduler's roll-up: every (author, subject, kind) count of one hour, in batches. */
  scanHour(hour: number, onBatch: (rows: HourRow[]) => Promise<void>): Promise<void>
  /**
   * The same records as `scanHour`, as ids: no DID string per row and no per-record map (the roll-up's
   * scan spent most of its time there). Subjects are resolved by the caller, once per account
   * (`resolveIds`).
   */
  scanHourIds(hour: number, onBatch: (batch: HourIdBatch) => Promise<void>): Promise<void>
  /** DIDs of 8-byte ids (8 * i of `ids`), undefined where the DID table has none. */
  resolveIds(ids: Buffer): Promise<(string | undefined)[]>
  /** Hours (since the epoch) that have an author index, ascending. */
  hours(): Promise<number[]>
  /** Frees an hour's author index (after its roll-up). The records themselves expire on their own. */
  dropHour(hour: number): Promise<void>
}

/** Authors whose DIDs are resolved at once (a DID table read, then one MGET each, in one pipeline). */
const BATCH = 200

export function createHourView(ctx: ReaderContext): HourView {
  const { redis, schema } = ctx
  return {
    scanHour: (hour, onBatch) =>
      inBatches(ctx, hour, (chunk) => scanAuthors(ctx, hour, chunk), onBatch),
    scanHourIds: (hour, onBatch) =>
      inBatches(ctx, hour, (chunk) => scanAuthorIds(ctx, hour, chunk), onBatch),

    async resolveIds(ids) {
      const keys: string[] = []
      for (let i = 0; i + 8 <= ids.length; i += 8) keys.push(ids.toString('latin1', i, i + 8))
      const dids = await resolveIds(redis, schema, keys, ctx.cache)
      return keys.map((k) => dids.get(k))
    },

    async hours() {
      const members = await redis.smembers(schema.indexHours)
      return members.map(Number).sort((a, b) => a - b)
    },

    async dropHour(hour) {
      // One UNLINK per shard: the shards live in different cluster slots.
      const pipe = pipelineFor(redis)
      for (let s = 0; s < HOUR_AUTHOR_SHARDS; s++) pipe.unlink(schema.hourAuthors(hour, s))
      await pipe.srem(schema.indexHours, hour).exec()
    },
  }
}

/** The hour's authors (ids, 8 latin1 characters each) in batches of BATCH, each read by `scan`. */
async function inBatches<T>(
  { redis, schema }: ReaderContext,
  hour: number,
  scan: (chunk: string[]) => Promise<T | null>,
  onBatch: (batch: T) => Promise<void>,
): Promise<void> {
  const pipe = pipelineFor(redis)
  for (let s = 0; s < HOUR_AUTHOR_SHARDS; s++) pipe.smembers(schema.hourAuthors(hour, s))
  const sets = (await pipe.exec()) ?? []
  const authorKeys: string[] = []
  for (const [err, members] of sets) {
    if (err) throw err
    for (const m of members as string[]) authorKeys.push(idFromDecimal(m).toString('latin1'))
  }
  // The next batch's reads go out before this batch is handed on: Redis serves one while Node decodes
  // and folds the other (one at a time, the roll-up's scan spent a fifth of its time waiting).
  const batch = (i: number) => {
    const p = scan(authorKeys.slice(i, i + BATCH))
    p.catch(() => {}) // awaited below; a failure while the previous batch is handed on is not unhandled
    return p
  }
  let next = authorKeys.length > 0 ? batch(0) : null
  for (let i = 0; next; i += BATCH) {
    const rows = await next
    next = i + BATCH < authorKeys.length ? batch(i + BATCH) : null
    if (rows) await onBatch(rows)
  }
}

/** The logs (account log, hour log) of the authors of `chunk` that resolve, with their DIDs. */
async function readLogs(
  { redis, schema, cache }: ReaderContext,
  hour: number,
  chunk: readonly string[],
): Promise<{ list: string[]; keys: string[]; logs: (Buffer | null)[][] }> {
  const authors = await resolveIds(redis, schema, chunk, cache)
  const list: string[] = []
  const keys: string[] = []
  for (const k of chunk) {
    const did = authors.get(k)
    if (did === undefined) continue
    list.push(did)
    keys.push(k)
  }
  const p = pipelineFor(redis)
  for (const did of list) p.mgetBuffer(schema.accountLog(did), schema.accountHourLog(did, hour))
  const res = (await p.exec()) ?? []
  const logs = list.map((_, j) => {
    const [err, pair] = res[j] ?? []
    if (err) throw err
    return pair as (Buffer | null)[]
  })
  return { list, keys, logs }
}

/** Whether the record at `off` is an outbound interaction (not deleted, known kind) made in `hour`. */
function ofHour(buf: Buffer, off: number, hour: number): boolean {
  const code = buf[off + 8] as number
  if (code & (CODE_DELETED | CODE_UNKNOWN | CODE_INBOUND)) return false
  // the record's seconds, read by hand (Buffer#readUInt32BE was not inlined: ~6M records an hour)
  const o = off + 17
  const secs =
    (buf[o] as number) * 0x1000000 +
    (((buf[o + 1] as number) << 16) | ((buf[o + 2] as number) << 8) | (buf[o + 3] as number))
  return Math.floor(secs / 3600) === hour
}

/** The records of one hour of the authors of `chunk` as ids (HourIdBatch); null when none has any. */
async function scanAuthorIds(
  ctx: ReaderContext,
  hour: number,
  chunk: readonly string[],
): Promise<HourIdBatch | null> {
  const { list, keys, logs } = await readLogs(ctx, hour, chunk)
  let total = 0
  for (const pair of logs) for (const log of pair) if (log) total += log.length
  // an upper bound: every record of the logs
  let subjects = Buffer.allocUnsafe(Math.floor(total / RECORD_SIZE) * 8)
  let kinds = new Uint8Array(subjects.length / 8)
  const start = new Int32Array(list.length + 1)
  const authorIds = Buffer.allocUnsafe(8 * list.length)
  let n = 0
  logs.forEach((pair, j) => {
    authorIds.write(keys[j] as string, 8 * j, 'latin1')
    for (const log of pair) {
      forEachRecord(log, (buf, off) => {
        if (!ofHour(buf, off, hour)) return
        // CODE_KINDS is in INTERACTION_KINDS order: the code's low bits are the kind's index
        kinds[n] = (buf[off + 8] as number) & 3
        const to = 8 * n++
        for (let b = 0; b < 8; b++) subjects[to + b] = buf[off + 9 + b] as number
      })
    }
    start[j + 1] = n
  })
  if (n === 0) return null
  subjects = subjects.subarray(0, 8 * n)
  kinds = kinds.subarray(0, n)
  return { authors: list, authorIds, start, subjects, kinds }
}

/** The rows of one hour of the authors of `chunk` (ids, 8 latin1 characters); null when none has any. */
async function scanAuthors(
  ctx: ReaderContext,
  hour: number,
  chunk: readonly string[],
): Promise<HourRow[] | null> {
  const { redis, schema, cache } = ctx
  const { list, logs: res } = await readLogs(ctx, hour, chunk)
  // per author: subject id (8 latin1 characters) + kind digit -> count
  const counts = new Map<string, Map<string, number>>()
  const subjectKeys: string[] = []
  list.forEach((author, j) => {
    const mine = new Map<string, number>()
    for (const log of res[j] ?? []) {
      forEachRecord(log, (buf, off) => {
        if (!ofHour(buf, off, hour)) return
        const key = buf.toString('latin1', off + 9, off + 17) + ((buf[off + 8] as number) & 3)
        mine.set(key, (mine.get(key) ?? 0) + 1)
      })
    }
    if (mine.size > 0) counts.set(author, mine)
    for (const key of mine.keys()) subjectKeys.push(key.slice(0, 8))
  })
  if (counts.size === 0) return null
  const subjects = await resolveIds(redis, schema, subjectKeys, cache)
  const rows: HourRow[] = []
  for (const [author, mine] of counts) {
    for (const [key, count] of mine) {
      const subject = subjects.get(key.slice(0, 8))
      if (subject === undefined) continue
      rows.push({
        author,
        subject,
        kind: CODE_KINDS[Number(key[8])] as InteractionKind,
        count,
      })
    }
  }
  return rows
}
