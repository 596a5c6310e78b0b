// bench:api's long-term days: the roll-up's day blobs (`s` and `r` sides) of every account of the bench's
// population for the days before the live log, up to the roll-up cursor's day, so that 7/30/90-day circles
// read what a running system holds. The interactions are drawn as the live log's (the same Zipf rankings
// of authors and subjects, the same kind mix, from a generator of their own), counted per (author, subject,
// kind) and day, and written with the long-term encoder (`encodeDayBlob`, as the scheduler's fold writes
// them: mark 24 for a day folded to its last hour) and the DID table entries the fold writes first
// (`rememberDids`). BENCH_LONG_DAY_INTERACTIONS a day (default 100k, a fifth of the live log's rate: a
// 90-day seed at the full rate takes minutes and gigabytes of this 2-core machine).
import { didId, rememberDids } from '@circles/interaction-index'
import { encodeDayBlob, kindIndex, markOfHour, type PackedRecord } from '@circles/long-term'
import type { RedisSchema } from '@circles/redis-schema'
import { createWorkloadRandom } from '@circles/testkit/workload'
import type { Redis } from 'ioredis'

export const LONG_DAY_INTERACTIONS = Number(process.env.BENCH_LONG_DAY_INTERACTIONS ?? 100_000)

export interface LongSeed {
  /** Days written (the oldest is `firstDay`), records (pair, kind, day, direction), bytes of blobs. */
  days: number
  firstDay: number
  lastDay: number
  records: number
  blobBytes: number
}

interface Population {
  dids: readonly string[]
  authorRank: Int32Array
  subjectRank: Int32Array
  zipfS: number
}

/**
 * One day's records per account and direction: `sent` keyed by author, `received` by subject, each a list
 * of records naming the partner's id.
 */
function drawDay(
  pop: Population,
  draw: { zipf: () => number; kind: () => number },
  perDay: number,
): { sent: Map<number, PackedRecord[]>; received: Map<number, PackedRecord[]> } {
  const n = pop.dids.length
  // (author * n + subject) * 4 + kind: below 2^53 for any population the bench runs.
  const counts = new Map<number, number>()
  for (let i = 0; i < perDay; i++) {
    const a = pop.authorRank[draw.zipf()] as number
    let s = pop.subjectRank[draw.zipf()] as number
    while (s === a) s = pop.subjectRank[draw.zipf()] as number
    const key = (a * n + s) * 4 + draw.kind()
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  const sent = new Map<number, PackedRecord[]>()
  const received = new Map<number, PackedRecord[]>()
  const push = (m: Map<number, PackedRecord[]>, k: number, r: PackedRecord) => {
    const list = m.get(k)
    if (list) list.push(r)
    else m.set(k, [r])
  }
  for (const [key, count] of counts) {
    const kind = key % 4
    const pair = (key - kind) / 4
    const s = pair % n
    const a = (pair - s) / n
    push(sent, a, { kind, partner: idOf(pop, s), count })
    push(received, s, { kind, partner: idOf(pop, a), count })
  }
  return { sent, received }
}

async function flush(redis: Redis, pending: Map<string, (string | Buffer)[]>): Promise<void> {
  let pipe = redis.pipeline()
  const exec = async () => {
    for (const [err] of (await pipe.exec()) ?? []) if (err) throw err
    pipe = redis.pipeline()
  }
  for (const [key, fields] of pending) {
    pipe.hset(key, ...fields)
    if (pipe.length >= 2000) await exec()
  }
  await exec()
}

const ids = new Map<string, Buffer>()
function idOf(pop: Population, i: number): Buffer {
  const d = pop.dids[i] as string
  let id = ids.get(d)
  if (!id) {
    id = didId(d)
    ids.set(d, id)
  }
  return id
}

/**
 * Writes `days` days of day blobs ending at the roll-up cursor's day (`lastDay`), the DID table entries
 * first. Returns what it wrote.
 */
export async function seedLongTerm(
  redis: Redis,
  schema: RedisSchema,
  pop: Population,
  opts: { lastDay: number; days: number },
): Promise<LongSeed> {
  await rememberDids(redis, schema, pop.dids)
  const r = createWorkloadRandom(43)
  const zipf = r.zipfSampler(pop.dids.length, pop.zipfS)
  const draw = { zipf, kind: () => kindIndex(r.pickKind()) }
  const firstDay = opts.lastDay - opts.days + 1
  const mark = markOfHour(23)
  let records = 0
  let blobBytes = 0
  // Fields of several days per HSET: a command per account and day (7M) cost most of the seeding's time.
  let pending = new Map<string, (string | Buffer)[]>()
  for (let day = firstDay; day <= opts.lastDay; day++) {
    const { sent, received } = drawDay(pop, draw, LONG_DAY_INTERACTIONS)
    for (const [side, byAccount] of [
      ['s', sent],
      ['r', received],
    ] as const) {
      for (const [account, list] of byAccount) {
        const blob = encodeDayBlob(mark, list)
        records += list.length
        blobBytes += blob.length
        const key = schema.longTerm(pop.dids[account] as string, side)
        const fields = pending.get(key)
        if (fields) fields.push(String(day), blob)
        else pending.set(key, [String(day), blob])
      }
    }
    if ((day - firstDay) % 10 === 9 || day === opts.lastDay) {
      await flush(redis, pending)
      pending = new Map()
    }
  }
  return { days: opts.days, firstDay, lastDay: opts.lastDay, records, blobBytes }
}
