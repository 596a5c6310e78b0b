// The heavy account the history benches ask for (bench-history, bench-api): BENCH_PARTNERS partners a
// day out of a pool of BENCH_POOL, both ways, a fifth with a reply too, a tenth backfilled too (`bs`/`br`),
// over BENCH_DAYS days up to today, the roll-up folded through 23:00 three days ago (so the newest three
// days are partial, as in a live system), every profile cached as after earlier requests.
import { DAY_MS } from '@circles/core'
import { rememberDids } from '@circles/interaction-index'
import { encodeDayBlob, kindIndex, type PackedRecord, packDid } from '@circles/long-term'
import type { LongTermSide, RedisSchema } from '@circles/redis-schema'
import { prng } from '@circles/testkit'
import type { Redis } from 'ioredis'
import { did } from '../test/helpers.js'

export const HISTORY_DAYS = Number(process.env.BENCH_DAYS ?? 90)
const PARTNERS = Number(process.env.BENCH_PARTNERS ?? 2000)
const POOL = Number(process.env.BENCH_POOL ?? 5000)

export interface HeavyHistory {
  actor: string
  days: number
  partnersPerDay: number
  records: number
  blobBytes: number
}

export async function seedHeavyHistory(redis: Redis, schema: RedisSchema): Promise<HeavyHistory> {
  const actor = did(1)
  const pool = Array.from({ length: POOL }, (_, i) => did(10_000 + i))
  const profiles = redis.pipeline()
  for (const [i, p] of [actor, ...pool].entries()) {
    profiles.set(schema.profile(p), JSON.stringify({ did: p, handle: `u${i}.test` }), 'EX', 86_400)
  }
  await profiles.exec()
  const rand = prng(42)
  const today = Math.floor(Date.now() / DAY_MS)
  await redis.set(schema.rollupCursor, String(today * 24 - 49))
  const rec = (p: string, k: 'like' | 'repost' | 'reply' | 'quote', n: number): PackedRecord => ({
    kind: kindIndex(k),
    partner: packDid(p),
    count: n,
  })
  let records = 0
  let blobBytes = 0
  for (let day = today - HISTORY_DAYS + 1; day <= today; day++) {
    const sides: Record<LongTermSide, PackedRecord[]> = { s: [], r: [], bs: [], br: [] }
    const start = Math.floor(rand() * (POOL - PARTNERS))
    for (let i = 0; i < PARTNERS; i++) {
      const p = pool[start + i] as string
      // Zipf-like: a few partners count much more than the rest.
      const n = Math.max(1, Math.floor(200 / (i + 1 + rand() * 5)))
      sides.s.push(rec(p, 'like', n))
      sides.r.push(rec(p, 'like', Math.max(1, n >> 1)))
      if (i % 5 === 0) sides.s.push(rec(p, 'reply', 1 + (n >> 3)))
      if (i % 10 === 0) sides.bs.push(rec(p, 'repost', 1), rec(p, 'quote', 1))
      if (i % 10 === 5) sides.br.push(rec(p, 'like', 2))
    }
    const pipe = redis.pipeline()
    for (const [side, list] of Object.entries(sides) as [LongTermSide, PackedRecord[]][]) {
      const blob = encodeDayBlob(0, list)
      records += list.length
      blobBytes += blob.length
      pipe.hset(schema.longTerm(actor, side), String(day), blob)
    }
    pipe.hset(
      schema.snapshot(actor),
      String(day),
      JSON.stringify({ day, sent: { like: 1 }, received: { like: 1 } }),
    )
    await pipe.exec()
  }
  await rememberDids(redis, schema, [actor, ...pool])
  return { actor, days: HISTORY_DAYS, partnersPerDay: PARTNERS, records, blobBytes }
}

export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}
