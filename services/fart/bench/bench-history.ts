// pnpm bench:history: GET /v1/accounts/:actor/history of a heavy account (BENCH_DAYS days, BENCH_PARTNERS
// partners a day, both ways, a tenth of them backfilled too) through app.inject() on the test Redis, under
// a private key prefix removed at the end. Profiles come from the tests' fake AppView and are cached by
// the first (unmeasured) requests, as for any account asked twice. Also times what a snapshot read would
// cost (one HGETALL of the day totals) for comparison: it could replace none of the blob reads, since the
// top partners need them. Progress lines first, one JSON line last.
import { DAY_MS } from '@circles/core'
import { rememberDids } from '@circles/interaction-index'
import { encodeDayBlob, kindIndex, packDid } from '@circles/long-term'
import type { LongTermSide } from '@circles/redis-schema'
import { createTestRedis, prng } from '@circles/testkit'
import { buildApp } from '../src/app.js'
import { toConfig } from '../src/config.js'
import { createIndex } from '../src/wiring.js'
import { startFakeAppView } from '../test/fake-appview.js'
import { did } from '../test/helpers.js'

const DAYS = Number(process.env.BENCH_DAYS ?? 90)
const PARTNERS = Number(process.env.BENCH_PARTNERS ?? 2000)
const POOL = Number(process.env.BENCH_POOL ?? 5000)
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200)

function log(msg: string): void {
  process.stdout.write(`[bench-history] ${new Date().toISOString()} ${msg}\n`)
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

async function main(): Promise<void> {
  const t = await createTestRedis('bench-history')
  const appview = await startFakeAppView()
  const actor = did(1)
  const pool = Array.from({ length: POOL }, (_, i) => did(10_000 + i))
  for (const [i, p] of [actor, ...pool].entries())
    appview.profiles.set(p, { did: p, handle: `u${i}.test` })
  const rand = prng(42)
  const today = Math.floor(Date.now() / DAY_MS)
  await t.redis.set(t.schema.rollupCursor, String(today * 24 - 49))
  let records = 0
  let bytes = 0
  for (let day = today - DAYS + 1; day <= today; day++) {
    const sides: Record<LongTermSide, ReturnType<typeof rec>[]> = { s: [], r: [], bs: [], br: [] }
    function rec(p: string, k: 'like' | 'repost' | 'reply' | 'quote', n: number) {
      return { kind: kindIndex(k), partner: packDid(p), count: n }
    }
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
    const pipe = t.redis.pipeline()
    for (const [side, list] of Object.entries(sides) as [LongTermSide, typeof sides.s][]) {
      const blob = encodeDayBlob(0, list)
      records += list.length
      bytes += blob.length
      pipe.hset(t.schema.longTerm(actor, side), String(day), blob)
    }
    pipe.hset(
      t.schema.snapshot(actor),
      String(day),
      JSON.stringify({ day, sent: { like: 1 }, received: { like: 1 } }),
    )
    await pipe.exec()
  }
  await rememberDids(t.redis, t.schema, [actor, ...pool])
  log(`seeded ${DAYS} days, ${records} records, ${(bytes / 1e6).toFixed(1)} MB of day blobs`)
  const config = toConfig({ REDIS_PREFIX: t.prefix, APPVIEW_URL: appview.url, RATE_LIMIT_MAX: '0' })
  const app = await buildApp({
    config,
    redis: t.redis,
    schema: t.schema,
    index: createIndex(t.redis, t.schema),
  })
  const url = `/v1/accounts/${actor}/history?days=${DAYS}`
  for (let i = 0; i < 10; i++) {
    const res = await app.inject(url)
    if (res.statusCode !== 200)
      throw new Error(`status ${res.statusCode}: ${res.body.slice(0, 200)}`)
  }
  const ms: number[] = []
  // CPU time of this process (the API's and the client's share of inject, not Redis's): what a shared
  // machine's load disturbs least.
  const cpu0 = process.cpuUsage()
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now()
    await app.inject(url)
    ms.push(performance.now() - t0)
  }
  const cpu = process.cpuUsage(cpu0)
  ms.sort((a, b) => a - b)
  const snap: number[] = []
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now()
    const all = await t.redis.hgetall(t.schema.snapshot(actor))
    for (const v of Object.values(all)) JSON.parse(v)
    snap.push(performance.now() - t0)
  }
  snap.sort((a, b) => a - b)
  const out = {
    days: DAYS,
    partnersPerDay: PARTNERS,
    records,
    blobBytes: bytes,
    requests: REQUESTS,
    p50Ms: +quantile(ms, 0.5).toFixed(2),
    p99Ms: +quantile(ms, 0.99).toFixed(2),
    cpuMsPerRequest: +((cpu.user + cpu.system) / 1000 / REQUESTS).toFixed(2),
    snapshotReadP50Ms: +quantile(snap, 0.5).toFixed(3),
  }
  log(
    `history p50 ${out.p50Ms} ms, p99 ${out.p99Ms} ms, CPU ${out.cpuMsPerRequest} ms a request; ` +
      `snapshot HGETALL p50 ${out.snapshotReadP50Ms} ms`,
  )
  await app.close()
  await appview.close()
  await t.cleanup()
  process.stdout.write(`${JSON.stringify(out)}\n`)
}

await main()
