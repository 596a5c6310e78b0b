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

export interface HourView {
  /** For the scheduler's roll-up: every (author, subject, kind) count of one hour, in batches. */
  scanHour(hour: number, onBatch: (rows: HourRow[]) => Promise<void>): Promise<void>
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
    async scanHour(hour, onBatch) {
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
        const p = scanAuthors(ctx, hour, authorKeys.slice(i, i + BATCH))
        p.catch(() => {}) // awaited below; a failure while the previous batch is handed on is not unhandled
        return p
      }
      let next = authorKeys.length > 0 ? batch(0) : null
      for (let i = 0; next; i += BATCH) {
        const rows = await next
        next = i + BATCH < authorKeys.length ? batch(i + BATCH) : null
        if (rows) await onBatch(rows)
      }
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

/** The rows of one hour of the authors of `chunk` (ids, 8 latin1 characters); null when none has any. */
async function scanAuthors(
  { redis, schema, cache }: ReaderContext,
  hour: number,
  chunk: readonly string[],
): Promise<HourRow[] | null> {
  const authors = await resolveIds(redis, schema, chunk, cache)
  const list = chunk.flatMap((k) => {
    const did = authors.get(k)
    return did === undefined ? [] : [did]
  })
  const p = pipelineFor(redis)
  for (const did of list) p.mgetBuffer(schema.accountLog(did), schema.accountHourLog(did, hour))
  const res = (await p.exec()) ?? []
  // per author: subject id (8 latin1 characters) + kind digit -> count
  const counts = new Map<string, Map<string, number>>()
  const subjectKeys: string[] = []
  list.forEach((author, j) => {
    const [err, logs] = res[j] ?? []
    if (err) throw err
    const mine = new Map<string, number>()
    for (const log of logs as (Buffer | null)[]) {
      forEachRecord(log, (buf, off) => {
        const code = buf[off + 8] as number
        if (code & (CODE_DELETED | CODE_UNKNOWN | CODE_INBOUND)) return
        if (Math.floor(buf.readUInt32BE(off + 17) / 3600) !== hour) return
        const key = buf.toString('latin1', off + 9, off + 17) + (code & 3)
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
