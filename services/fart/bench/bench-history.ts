// pnpm bench:history: GET /v1/accounts/:actor/history?days=BENCH_DAYS of a heavy account (history-account.ts)
// through app.inject() on the test Redis, under a private key prefix removed at the end. Two apps on the
// same data, one after the other: the baseline without the memo of complete days (HISTORY_MEMO_DAYS=0,
// every day's blobs read and tallied on every request, as before the memo), then with it. For the memo,
// also the first request of the process (no day remembered yet: the cost after a restart, or for an
// account nobody asked for lately) and a request after a backfill rewrote one day. Profiles are cached, as
// for any account asked twice. Also times what a snapshot read costs (one HGETALL of the day totals), for
// comparison. Progress lines first, one JSON line last.
import { DAY_MS } from '@circles/core'
import { createTestRedis } from '@circles/testkit'
import { buildApp } from '../src/app.js'
import { toConfig } from '../src/config.js'
import { createIndex } from '../src/wiring.js'
import { quantile, seedHeavyHistory } from './history-account.js'

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200)

function log(msg: string): void {
  process.stdout.write(`[bench-history] ${new Date().toISOString()} ${msg}\n`)
}

interface Timing {
  p50Ms: number
  p99Ms: number
  cpuMsPerRequest: number
}

async function main(): Promise<void> {
  const t = await createTestRedis('bench-history')
  const seeded = await seedHeavyHistory(t.redis, t.schema)
  log(
    `seeded ${seeded.days} days, ${seeded.records} records, ${(seeded.blobBytes / 1e6).toFixed(1)} MB of day blobs`,
  )
  const url = `/v1/accounts/${seeded.actor}/history?days=${seeded.days}`
  const appWith = async (memoDays: string) =>
    buildApp({
      config: toConfig({
        REDIS_PREFIX: t.prefix,
        APPVIEW_URL: 'http://127.0.0.1:9', // never asked: every profile is cached
        RATE_LIMIT_MAX: '0',
        HISTORY_MEMO_DAYS: memoDays,
      }),
      redis: t.redis,
      schema: t.schema,
      index: createIndex(t.redis, t.schema),
    })
  const once = async (app: Awaited<ReturnType<typeof appWith>>) => {
    const t0 = performance.now()
    const res = await app.inject(url)
    if (res.statusCode !== 200)
      throw new Error(`status ${res.statusCode}: ${res.body.slice(0, 200)}`)
    return { ms: performance.now() - t0, body: res.body }
  }
  const measure = async (app: Awaited<ReturnType<typeof appWith>>): Promise<Timing> => {
    for (let i = 0; i < 10; i++) await once(app)
    const ms: number[] = []
    // CPU time of this process (the API's and the client's share of inject, not Redis's): what a shared
    // machine's load disturbs least.
    const cpu0 = process.cpuUsage()
    for (let i = 0; i < REQUESTS; i++) ms.push((await once(app)).ms)
    const cpu = process.cpuUsage(cpu0)
    ms.sort((a, b) => a - b)
    return {
      p50Ms: +quantile(ms, 0.5).toFixed(2),
      p99Ms: +quantile(ms, 0.99).toFixed(2),
      cpuMsPerRequest: +((cpu.user + cpu.system) / 1000 / REQUESTS).toFixed(2),
    }
  }

  const plain = await appWith('0')
  const baseline = await measure(plain)
  const want = (await once(plain)).body
  await plain.close()
  log(
    `baseline (no memo): p50 ${baseline.p50Ms} ms, p99 ${baseline.p99Ms} ms, CPU ${baseline.cpuMsPerRequest} ms a request`,
  )

  const app = await appWith('10000')
  const first = await once(app)
  if (first.body !== want) throw new Error('the memo changed the answer')
  const memo = await measure(app)
  log(
    `memo: first request ${first.ms.toFixed(1)} ms, then p50 ${memo.p50Ms} ms, p99 ${memo.p99Ms} ms, CPU ${memo.cpuMsPerRequest} ms a request`,
  )
  // A partner's backfill rewrites one complete day's `br` blob and so its token: that day is read again.
  const day = Math.floor(Date.now() / DAY_MS) - 10
  await t.redis.hset(t.schema.longTermVersion(seeded.actor), String(day), 'bench')
  const rewritten = await once(app)
  log(`after one day's backfill: ${rewritten.ms.toFixed(1)} ms`)
  await app.close()

  const snap: number[] = []
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now()
    const all = await t.redis.hgetall(t.schema.snapshot(seeded.actor))
    for (const v of Object.values(all)) JSON.parse(v)
    snap.push(performance.now() - t0)
  }
  snap.sort((a, b) => a - b)
  const out = {
    bench: 'history',
    days: seeded.days,
    partnersPerDay: seeded.partnersPerDay,
    records: seeded.records,
    blobBytes: seeded.blobBytes,
    requests: REQUESTS,
    baselineP50Ms: baseline.p50Ms,
    baselineP99Ms: baseline.p99Ms,
    baselineCpuMsPerRequest: baseline.cpuMsPerRequest,
    firstMs: +first.ms.toFixed(2),
    p50Ms: memo.p50Ms,
    p99Ms: memo.p99Ms,
    cpuMsPerRequest: memo.cpuMsPerRequest,
    oneDayRewrittenMs: +rewritten.ms.toFixed(2),
    snapshotReadP50Ms: +quantile(snap, 0.5).toFixed(3),
  }
  await t.cleanup()
  process.stdout.write(`${JSON.stringify(out)}\n`)
}

await main()
