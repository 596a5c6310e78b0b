// pnpm bench:forget: the forget step on one heavy account, in a private redis-server. The account has
// BENCH_PARTNERS partners (default 2,000) on each of BENCH_DAYS days (default 90), both directions: the
// worst case for its partners' blobs (every partner's day blob holds it, next to BENCH_OTHERS other
// records, default 5). BENCH_KEYS unrelated keys (default 1,000,000) stand for the rest of a deployment,
// which the step's one SCAN of the circle caches walks. Timed apart: the fence claim (shared with the
// roll-up's fold, once per run), the forget of the account, and a run with an empty queue. Progress lines
// first, one JSON line last.
import { DAY_MS } from '@circles/core'
import { didId, rememberDids } from '@circles/interaction-index'
import { encodeDayBlob, type PackedRecord } from '@circles/long-term'
import { createSchema } from '@circles/redis-schema'
import { startRedisServer } from '@circles/testkit'
import { Redis } from 'ioredis'
import { createRollupFence } from '../src/fence.js'
import { runForget } from '../src/forget.js'
import { numberedDid, progressOf } from './bench-dids.js'

const PARTNERS = Number(process.env.BENCH_PARTNERS ?? 2000)
const DAYS = Number(process.env.BENCH_DAYS ?? 90)
const OTHERS = Number(process.env.BENCH_OTHERS ?? 5)
const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000)

const progress = progressOf('bench-forget')
const did = numberedDid

async function seed(redis: Redis, schema: ReturnType<typeof createSchema>): Promise<string> {
  const x = did(0)
  const partners = Array.from({ length: PARTNERS }, (_, i) => did(i + 1))
  const others = Array.from({ length: OTHERS }, (_, i) => didId(did(PARTNERS + 1 + i)))
  await rememberDids(redis, schema, [x, ...partners])
  const today = Math.floor(Date.now() / DAY_MS)
  const xId = didId(x)
  const rec = (partner: Buffer, count: number): PackedRecord => ({ kind: 0, partner, count })
  const ids = partners.map(didId)
  for (let d = 0; d < DAYS; d++) {
    const day = String(today - 1 - d)
    let pipe = redis.pipeline()
    const own = encodeDayBlob(
      24,
      ids.map((id) => rec(id, 1)),
    )
    pipe.hset(schema.longTerm(x, 's'), day, own).hset(schema.longTerm(x, 'r'), day, own)
    for (let i = 0; i < partners.length; i++) {
      const p = partners[i] as string
      const blob = encodeDayBlob(24, [rec(xId, 1 + (i % 3)), ...others.map((o) => rec(o, 2))])
      pipe.hset(schema.longTerm(p, 'r'), day, blob).hset(schema.longTerm(p, 's'), day, blob)
      if (pipe.length >= 5000) {
        await pipe.exec()
        pipe = redis.pipeline()
      }
    }
    await pipe.exec()
  }
  for (let i = 0; i < KEYS; i += 10_000) {
    const pipe = redis.pipeline()
    for (let j = i; j < Math.min(KEYS, i + 10_000); j++)
      pipe.set(`${schema.prefix}filler:${j}`, '1')
    await pipe.exec()
  }
  return x
}

async function main(): Promise<void> {
  const server = await startRedisServer()
  const redis = new Redis(server.url)
  const schema = createSchema('circles:')
  try {
    progress(`seeding: ${PARTNERS} partners x ${DAYS} days, ${KEYS} other keys`)
    const x = await seed(redis, schema)
    const dbsize = await redis.dbsize()
    const fence = createRollupFence(
      redis,
      schema,
      await redis.incr(schema.schedulerFenceCounter('rollup')),
    )
    let t0 = performance.now()
    await fence.claim()
    const claimMs = Math.round(performance.now() - t0)
    progress(`fence claimed in ${claimMs} ms; forgetting`)
    await redis.zadd(schema.forgetQueue, Date.now(), x)
    t0 = performance.now()
    const result = await runForget(redis, schema, { fence, now: Date.now() })
    const forgetMs = Math.round(performance.now() - t0)
    t0 = performance.now()
    const idle = await runForget(redis, schema, { fence, now: Date.now() })
    const idleMs = Math.round(performance.now() - t0)
    process.stdout.write(
      `${JSON.stringify({ partners: PARTNERS, days: DAYS, others: OTHERS, dbsize, claimMs, forgetMs, idleMs, idleRecheckedIds: idle.recheckedIds, result })}\n`,
    )
  } finally {
    redis.disconnect()
    await server.stop()
  }
}

main().catch((err) => {
  process.exitCode = 1
  process.stderr.write(`${(err as Error).stack}\n`)
})
