import {
  HOUR_MS,
  INTERACTION_KINDS,
  type InteractionKind,
  type StreamEvent,
  tidFromMs,
} from '@circles/core'
import {
  createIndexReader,
  didId,
  didTableBucket,
  rememberDids,
  unpackDidText,
} from '@circles/interaction-index'
import {
  encodeDayBlob,
  encodePlainDayBlob,
  kindIndex,
  resolvePartners,
  sumDayBlobs,
} from '@circles/long-term'
import {
  LONG_TERM_SIDES,
  type LongTermSide,
  MIRROR_SIDE,
  type RedisSchema,
} from '@circles/redis-schema'
import { prng, type TestRedis } from '@circles/testkit'
import type { Redis } from 'ioredis'
import { createFence, createRollupFence, type Fence, type RollupFence } from '../src/fence.js'
import type { HourRow, LiveHours } from '../src/live-source.js'

// Test helpers for the scheduler: generated interaction hours and a brute-force view of what the
// long-term aggregates must hold.

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

export function makeDids(n: number, seed = 1): string[] {
  const r = prng(seed)
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    // One in ten is a did:web, to exercise the unpacked partner path.
    if (i % 10 === 9) out.push(`did:web:host${i}.example.com`)
    else {
      let s = 'did:plc:'
      for (let j = 0; j < 24; j++) s += B32[Math.floor(r() * 32)]
      out.push(s)
    }
  }
  return out
}

/** Rows of many hours: skewed authors and subjects, kinds 72/14/11/3 %, counts mostly 1, some large. */
export function makeHours(
  hours: readonly number[],
  rowsPerHour: number,
  dids: readonly string[],
  seed = 2,
): Map<number, HourRow[]> {
  const r = prng(seed)
  const pick = () => dids[Math.floor(dids.length * r() ** 3)] as string
  const out = new Map<number, HourRow[]>()
  for (const hour of hours) {
    const merged = new Map<string, HourRow>()
    for (let i = 0; i < rowsPerHour; i++) {
      const author = pick()
      const subject = pick()
      if (author === subject) continue
      const x = r()
      const kind = x < 0.72 ? 'like' : x < 0.86 ? 'repost' : x < 0.97 ? 'reply' : 'quote'
      const count = r() < 0.02 ? 30 + Math.floor(r() * 300) : 1
      const key = `${author}|${subject}|${kind}`
      const prev = merged.get(key)
      if (prev) prev.count += count
      else merged.set(key, { author, subject, kind, count })
    }
    out.set(hour, [...merged.values()])
  }
  return out
}

/**
 * Indexer events over `hours` (creates; one like in twenty deleted again, which the roll-up must not
 * count), and the rows they leave in the live index.
 */
export function makeEvents(
  dids: readonly string[],
  hours: readonly number[],
  perHour: number,
  seed = 42,
): {
  events: StreamEvent[]
  rows: Map<number, HourRow[]>
} {
  const r = prng(seed)
  const pick = () => dids[Math.floor(dids.length * r() ** 2)] as string
  const events: StreamEvent[] = []
  const live = new Map<string, { hour: number; row: HourRow }>()
  for (const hour of hours) {
    for (let i = 0; i < perHour; i++) {
      const author = pick()
      const subject = pick()
      if (author === subject) continue
      const time = hour * HOUR_MS + Math.floor((i * HOUR_MS) / perHour)
      const rkey = tidFromMs(time, i % 1024)
      const x = r()
      const kind = x < 0.72 ? 'like' : x < 0.86 ? 'repost' : x < 0.97 ? 'reply' : 'quote'
      events.push({ type: 'create', kind, author, subject, rkey, time, chars: 0 })
      live.set(`${author}/${rkey}/${kind}`, { hour, row: { author, subject, kind, count: 1 } })
      if (kind === 'like' && r() < 0.05) {
        events.push({ type: 'delete', record: 'like', author, rkey, time: time + 1000 })
        live.delete(`${author}/${rkey}/${kind}`)
      }
    }
  }
  const rows = new Map<number, HourRow[]>()
  for (const { hour, row } of live.values()) {
    const list = rows.get(hour) ?? []
    list.push(row)
    rows.set(hour, list)
  }
  return { events, rows }
}

/** A roll-up fence with a fresh number from the lock's counter, as a new lock holder gets. */
export async function newRollupFence(redis: Redis, schema: RedisSchema): Promise<RollupFence> {
  return createRollupFence(redis, schema, await redis.incr(schema.schedulerFenceCounter('rollup')))
}

/** A prune fence with a fresh number from the prune lock's counter, as a new lock holder gets. */
export async function newPruneFence(redis: Redis, schema: RedisSchema): Promise<Fence> {
  const n = await redis.incr(schema.schedulerFenceCounter('prune'))
  return createFence(redis, schema.pruneFence, n)
}

/** The DID table bucket of a DID. */
export function bucketOf(did: string): number {
  return didTableBucket(didId(did))
}

/** A did:plc whose DID table entry lands in `bucket` (found by trying; ~8,000 SHA-1s on average). */
export function didInBucket(bucket: number, seed = 1): string {
  for (let i = 0; ; i++) {
    let s = ''
    for (let v = i * 7919 + seed; s.length < 24; v = Math.floor(v / 32)) s = B32[v % 32] + s
    const did = `did:plc:${s}`
    if (bucketOf(did) === bucket) return did
  }
}

/** A stand-in for the indexer's hour API over rows in memory (the aggregates themselves are in Redis). */
export function memoryLiveHours(
  data: Map<number, HourRow[]>,
  batch = 500,
): LiveHours & {
  freed: number[]
} {
  const freed: number[] = []
  return {
    freed,
    async hours() {
      return [...data.keys()].sort((a, b) => a - b)
    },
    async scanHour(hour, onBatch) {
      const rows = data.get(hour) ?? []
      for (let i = 0; i < rows.length; i += batch) await onBatch(rows.slice(i, i + batch))
    },
    async freeHour(hour) {
      data.delete(hour)
      freed.push(hour)
    },
  }
}

/**
 * `side|did|day` -> `partner|kind` -> count, by brute force over the rows: the author's `sent` side and
 * the subject's mirror of it (`s`/`r` as the roll-up writes them, `bs`/`br` as a backfill does).
 */
export function expectedAggregates(
  data: Map<number, HourRow[]>,
  sent: 's' | 'bs' = 's',
): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>()
  const add = (key: string, partner: string, kind: string, n: number) => {
    let m = out.get(key)
    if (!m) {
      m = new Map()
      out.set(key, m)
    }
    const k = `${partner}|${kind}`
    m.set(k, (m.get(k) ?? 0) + n)
  }
  for (const [hour, rows] of data) {
    const day = Math.floor(hour / 24)
    for (const row of rows) {
      add(`${sent}|${row.author}|${day}`, row.subject, row.kind, row.count)
      add(`${MIRROR_SIDE[sent]}|${row.subject}|${day}`, row.author, row.kind, row.count)
    }
  }
  return out
}

/** The same view read back from Redis for the given accounts, every side. */
export async function actualAggregates(
  redis: Redis,
  schema: RedisSchema,
  dids: readonly string[],
): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>()
  for (const did of dids) {
    for (const dir of LONG_TERM_SIDES) {
      const fields = await redis.hgetallBuffer(schema.longTerm(did, dir))
      for (const [day, blob] of Object.entries(fields)) {
        // Partner ids resolve through the DID table, as readers do.
        const byId = sumDayBlobs({ [day]: blob }, Number(day), Number(day))
        const m = new Map<string, number>()
        for (const [partner, counts] of await resolvePartners(redis, schema, byId)) {
          for (const [kind, n] of Object.entries(counts)) if (n > 0) m.set(`${partner}|${kind}`, n)
        }
        out.set(`${dir}|${did}|${day}`, m)
      }
    }
  }
  return out
}

/**
 * Writes rows as a repo backfill does: each row in its author's `bs` and its subject's `br` blob of the
 * row's day (mark 0, one record per partner and kind), and the DID table entries of everyone named. Not
 * the backfill's own code (packages/backfill): a stand-in with its output format, for the readers and
 * the forget step.
 */
export async function writeBackfilled(
  redis: Redis,
  schema: RedisSchema,
  hours: Iterable<[number, HourRow[]]>,
): Promise<void> {
  const data = new Map<number, HourRow[]>()
  for (const [hour, rows] of hours) data.set(hour, [...(data.get(hour) ?? []), ...rows])
  const named = new Set<string>()
  for (const [key, m] of expectedAggregates(data, 'bs')) {
    const [side, did, day] = key.split('|') as [LongTermSide, string, string]
    const recs = [...m].map(([rk, count]) => {
      const [partner, kind] = rk.split('|') as [string, InteractionKind]
      named.add(partner)
      return { kind: kindIndex(kind), partner: didId(partner), count }
    })
    named.add(did)
    // As the backfill: `bs` compact (Node), `br` plain (its script edits plain records)
    const encode = side === 'br' ? encodePlainDayBlob : encodeDayBlob
    await redis.hset(schema.longTerm(did, side), day, encode(0, recs))
  }
  await rememberDids(redis, schema, named)
}

export function sortedEntries(m: Map<string, Map<string, number>>): [string, [string, number][]][] {
  return [...m.entries()]
    .map(([k, v]) => [k, [...v.entries()].sort()] as [string, [string, number][]])
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
}

export const KINDS = INTERACTION_KINDS

export interface AggregateDiff {
  /** (direction, account, day, partner, kind) rows of the reference. */
  rows: number
  /** Interactions the reference counts (its sent rows; each is in a received row too). */
  interactions: number
  /** Rows counted more, or less (or missing), than in the reference; rows the reference does not have. */
  doubled: number
  lost: number
  extra: number
}

/** Compares aggregates row by row with a reference (e.g. a single undisturbed roll-up of the same input). */
export function diffAggregates(
  actual: Map<string, Map<string, number>>,
  reference: Map<string, Map<string, number>>,
): AggregateDiff {
  const out: AggregateDiff = { rows: 0, interactions: 0, doubled: 0, lost: 0, extra: 0 }
  for (const [key, want] of reference) {
    const got = actual.get(key)
    for (const [row, n] of want) {
      out.rows++
      if (key.startsWith('s|')) out.interactions += n
      const m = got?.get(row) ?? 0
      if (m > n) out.doubled++
      else if (m < n) out.lost++
    }
  }
  for (const [key, got] of actual) {
    for (const row of got.keys()) if (!reference.get(key)?.has(row)) out.extra++
  }
  return out
}

/** A like of `subject` by `author` at `time` (`seq` keeps rkeys of one millisecond apart). */
export function likeAt(author: string, subject: string, time: number, seq: number): StreamEvent {
  return {
    type: 'create',
    kind: 'like',
    author,
    subject,
    rkey: tidFromMs(time, seq),
    time,
    chars: 0,
  }
}

/** The DID table's entry for `did` (null: none), read by its id as the writer writes it. */
export async function tableEntry(t: TestRedis, did: string): Promise<string | null> {
  const v = await t.redis.hgetBuffer(t.schema.didTable(bucketOf(did)), didId(did))
  return v === null ? null : unpackDidText(v.toString())
}

/** `did`'s partners as a reader resolves them (top 100, both ways, 48 h): one missing from the DID table is left out. */
export async function partnersOf(t: TestRedis, did: string): Promise<string[]> {
  const reader = createIndexReader(t.redis, t.schema)
  const weights = { like: 1, repost: 1, reply: 1, quote: 1 }
  const top = await reader.topPartners({
    did,
    direction: 'both',
    windowHours: 48,
    weights,
    limit: 100,
  })
  return top.map((p) => p.did)
}
