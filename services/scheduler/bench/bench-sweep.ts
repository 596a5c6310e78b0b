// pnpm bench:sweep: one prune run's slice of the DID table sweep, in a private redis-server. The table
// holds BENCH_ENTRIES entries (default 1,000,000); a BENCH_QUIET share of the accounts (default 0.2) has
// nothing but its entry, the others a main log (one in four a long-term hash instead). The slice is
// BENCH_BUCKETS buckets (default: what the default schedule reads per run, 342 of 8192). Timed apart: the
// fence claim (once per run), the slice, and the same slice again (every quiet entry gone by then).
// Progress lines first, one JSON line last.
import { DAY_MS } from '@circles/core'
import { rememberDids } from '@circles/interaction-index'
import { encodeDayBlob } from '@circles/long-term'
import { createSchema } from '@circles/redis-schema'
import { startRedisServer } from '@circles/testkit'
import { Redis } from 'ioredis'
import { createFence } from '../src/fence.js'
import { bucketsPerRun, sweepDidTable } from '../src/table-sweep.js'
import { numberedDid, progressOf } from './bench-dids.js'

const ENTRIES = Number(process.env.BENCH_ENTRIES ?? 1_000_000)
const QUIET = Number(process.env.BENCH_QUIET ?? 0.2)
const BUCKETS = Number(process.env.BENCH_BUCKETS ?? bucketsPerRun(3_600_000, 24))

const progress = progressOf('bench-sweep')
const did = numberedDid

async function seed(redis: Redis, schema: ReturnType<typeof createSchema>): Promise<void> {
  const today = Math.floor(Date.now() / DAY_MS)
  const blob = encodeDayBlob(24, [])
  const step = 10_000
  for (let i = 0; i < ENTRIES; i += step) {
    const dids = Array.from({ length: Math.min(step, ENTRIES - i) }, (_, j) => did(i + j))
    await rememberDids(redis, schema, dids)
    const pipe = redis.pipeline()
    dids.forEach((d, j) => {
      // Spread evenly: account n is quiet when its n-th share crosses a whole number.
      const n = i + j
      if (Math.floor((n + 1) * QUIET) > Math.floor(n * QUIET)) return
      if (n % 4 === 0) pipe.hset(schema.longTerm(d, 's'), today - 1, blob)
      else pipe.set(schema.accountLog(d), 'records')
    })
    await pipe.exec()
    if (i % 200_000 === 0) progress(`seeded ${i} entries`)
  }
}

async function main(): Promise<void> {
  const server = await startRedisServer()
  const redis = new Redis(server.url)
  const schema = createSchema('circles:')
  try {
    progress(`seeding: ${ENTRIES} entries, ${QUIET} of them quiet; slice of ${BUCKETS} buckets`)
    await seed(redis, schema)
    const dbsize = await redis.dbsize()
    const fence = createFence(
      redis,
      schema.pruneFence,
      await redis.incr(schema.schedulerFenceCounter('prune')),
    )
    let t0 = performance.now()
    await fence.claim()
    const claimMs = Math.round(performance.now() - t0)
    progress(`fence claimed in ${claimMs} ms; sweeping`)
    const day = Math.floor(Date.now() / DAY_MS)
    const opts = { fence, buckets: BUCKETS }
    t0 = performance.now()
    const slice = await sweepDidTable(redis, schema, day, Date.now(), opts)
    const sliceMs = Math.round(performance.now() - t0)
    await redis.set(schema.didTableSweepCursor, slice.from)
    t0 = performance.now()
    const again = await sweepDidTable(redis, schema, day, Date.now(), opts)
    const againMs = Math.round(performance.now() - t0)
    process.stdout.write(
      `${JSON.stringify({ entries: ENTRIES, quiet: QUIET, buckets: BUCKETS, dbsize, claimMs, sliceMs, againMs, slice, again })}\n`,
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
