// pnpm bench:api: seeds a private redis-server with the indexer bench's distribution (Zipf s=1 over 100k
// accounts, 72/14/11/3 % like/repost/reply/quote, over 47 h), pre-caches every profile, starts the real API
// as a child process pinned to core 0 and drives GET /v1/circles with wrk (or autocannon) from this process's
// core 1 (redis-server too), so "on one core" means one core and the load generator never steals it; all
// at nice -10, so other work on the machine preempts them less:
//   healthz        the framework's floor on that core, same connections and duration as `cached`
//   cached         many connections on already-cached circles (the heaviest users and random ones)
//   uncached heavy the heaviest user, a new weights variant on every request, so each one computes
//   uncached random random active users, a new variant each time
//   history        GET /v1/accounts/:actor/history?days=90 of a very heavy account (history-account.ts:
//                  2,000 partners a day both ways, 450k records), one request at a time; its baseline is
//                  the same on an API without the memo of complete days (HISTORY_MEMO_DAYS=0)
//   long phases    (api-phases.ts) uncached 90-day circles of the heaviest and of random accounts over 88
//                  days of roll-up blobs (api-long-seed.ts) and the live log; the first page of
//                  /v1/interactions; uncached PNGs; all one request at a time
//   mixed          a user base's mix of accounts (Zipf), windows, formats and weights (api-phases.ts), many
//                  connections, after a warm-up of the same mix from another generator
// The API's CPU time per request (from /proc) is printed next to each rate: it is what noise on a shared
// machine disturbs least. BENCH_CPU_PROF=<dir> writes a V8 CPU profile of the API child there.
// Progress lines first, one JSON line last.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { createRequire } from 'node:module'
import { availableParallelism, setPriority } from 'node:os'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DAY_MS, HOUR_MS, type InteractionCreate, tidFromMs } from '@circles/core'
import {
  createIndexReader,
  createIndexWriter,
  ensureRedisSettings,
} from '@circles/interaction-index'
import { createSchema } from '@circles/redis-schema'
import { freePort, processCpuSeconds, startRedisServer } from '@circles/testkit'
import { createWorkloadRandom } from '@circles/testkit/workload'
import { Redis } from 'ioredis'
import { historyRun } from './api-history.js'
import { LONG_DAY_INTERACTIONS, seedLongTerm } from './api-long-seed.js'
import { longPhases, mixedPaths, steadyCache } from './api-phases.js'
import { seedHeavyHistory } from './history-account.js'
import { cannon, hammer, hasWrk, type Run } from './load.js'

const N = Number(process.env.BENCH_INTERACTIONS ?? 1_000_000)
const POPULATION = Number(process.env.BENCH_POPULATION ?? 100_000)
const ZIPF_S = Number(process.env.BENCH_ZIPF_S ?? 1)
const CACHED_SECONDS = Number(process.env.BENCH_CACHED_SECONDS ?? 10)
const HEAVY_REQUESTS = Number(process.env.BENCH_HEAVY_REQUESTS ?? 200)
const RANDOM_REQUESTS = Number(process.env.BENCH_RANDOM_REQUESTS ?? 1000)
// 1000, not 200: the p99 of 200 requests is their second slowest, which one stall of a shared machine decides.
const HISTORY_REQUESTS = Number(process.env.BENCH_HISTORY_REQUESTS ?? 1000)
const PREFIX = 'circles:'
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16)
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2)
/** Unmeasured requests before the uncached heavy phase (ten times as many before the random one). */
const UNCACHED_WARMUP = Number(process.env.BENCH_UNCACHED_WARMUP ?? 20)
/** Requests in the mixed list: about what 10 s at 6k req/s ask; wrk then goes round again (repeats are hits). */
const MIXED_PATHS = Number(process.env.BENCH_MIXED_PATHS ?? 60_000)
/** The user base's rate whose hour of requests the cache holds before the mixed run (api-phases.ts). */
const MIXED_RATE = Number(process.env.BENCH_MIXED_RATE ?? 5000)
const LONG_REQUESTS = Number(process.env.BENCH_LONG_REQUESTS ?? 200)
const API_CORE = '0'
const LOADGEN_CORE = '1'

const here = dirname(fileURLToPath(import.meta.url))
const MAIN = resolve(here, '../src/main.js')

function progress(msg: string): void {
  process.stdout.write(`[bench-api] ${new Date().toISOString()} ${msg}\n`)
}

/**
 * Pins this process (autocannon, and redis-server, which inherits it) to LOADGEN_CORE; the API child is
 * started under `taskset -c API_CORE`. Returns the command prefix for the API, or none (with a warning)
 * where pinning is impossible, in which case every figure includes the load generator's share of the cores.
 */
function pinCores(): string[] {
  const probe = spawnSync('taskset', ['-p', String(process.pid)], { encoding: 'utf8' })
  if (probe.error || probe.status !== 0) {
    progress('WARNING: taskset not found: API and load generator share the cores (figures are low)')
    return []
  }
  if (availableParallelism() < 2) {
    progress('WARNING: one core only: API and load generator share it (figures are low)')
    return []
  }
  // -a: every thread of this process (libuv pool, V8 helpers), not just the main one.
  const self = spawnSync('taskset', ['-a', '-p', '-c', LOADGEN_CORE, String(process.pid)])
  if (self.status !== 0) {
    progress('WARNING: taskset -p failed: API and load generator share the cores')
    return []
  }
  return ['taskset', '-c', API_CORE]
}

/**
 * Raises this process's scheduling priority (nice -10; root only), which redis-server, the API and wrk
 * inherit: other work on the machine (not pinned) then preempts the measured processes less, which shows
 * mostly in p99. A warning where not permitted.
 */
function raisePriority(): void {
  try {
    setPriority(0, -10)
  } catch (err) {
    progress(
      `WARNING: cannot raise priority (${(err as Error).message}): other work can preempt the API`,
    )
  }
}

// The same generator and seed as the indexer bench.
const { rand, zipfSampler, shuffled, randomDid, pickKind } = createWorkloadRandom(42)

async function waitFor(check: () => Promise<boolean>, what: string, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${what} did not start`)
}

/**
 * The node flags PM2 starts the API with (its `node_args` in ecosystem.config.cjs, without `--env-file`):
 * the bench measures the API as deployed.
 */
function deployedNodeArgs(): string[] {
  const file = resolve(here, '../../../../ecosystem.config.cjs')
  const { apps } = createRequire(import.meta.url)(file) as {
    apps: { name: string; node_args?: string[] }[]
  }
  const args = apps.find((a) => a.name === 'fart')?.node_args ?? []
  return args.filter((a) => !a.startsWith('--env-file'))
}

/** Starts the API as a child (pinned when `pin` is set) and waits until it answers. */
async function startApi(
  pin: string[],
  redisUrl: string,
  extraEnv: Record<string, string> = {},
): Promise<{ proc: ChildProcess; base: string }> {
  const port = await freePort()
  const prof = process.env.BENCH_CPU_PROF
  const node = [
    process.execPath,
    ...deployedNodeArgs(),
    ...(process.env.BENCH_API_NODE_ARGS ?? '').split(' ').filter(Boolean),
    ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []),
    MAIN,
  ]
  const [cmd, ...args] = [...pin, ...node] as [string, ...string[]]
  const proc = spawn(cmd, args, {
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: String(port),
      REDIS_URL: redisUrl,
      REDIS_PREFIX: PREFIX,
      RATE_LIMIT_MAX: process.env.BENCH_RATE_LIMIT_MAX ?? '0',
      APPVIEW_URL: 'http://127.0.0.1:9', // never needed: every profile is cached
      LOG_LEVEL: 'warn',
      CIRCLE_CACHE_TTL_SECONDS: '3600',
      ...extraEnv,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const base = `http://127.0.0.1:${port}`
  await waitFor(async () => (await fetch(`${base}/healthz`)).ok, 'API')
  return { proc, base }
}

async function stopApi(proc: ChildProcess | undefined): Promise<void> {
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    proc.kill('SIGTERM')
    await once(proc, 'exit')
  }
}

/** Redis server CPU seconds so far (INFO cpu). */
async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu')
  const get = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? Number.NaN)
  return get('used_cpu_sys') + get('used_cpu_user')
}

async function main() {
  const pin = pinCores()
  raisePriority()
  const wrk = hasWrk()
  if (!wrk) {
    progress(
      'WARNING: wrk not found (apt-get install wrk): autocannon drives the high-rate phases and, at ~75 us ' +
        'of CPU per request, is itself the limit near 13k req/s',
    )
  }
  const redisServer = await startRedisServer()
  const redis = new Redis(redisServer.url)
  let api: ChildProcess | undefined
  // Interrupted: stop the children we started before going.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      api?.kill('SIGTERM')
      void redisServer.stop()
      process.exitCode = 130
      setImmediate(() => process.kill(process.pid, sig))
    })
  }
  try {
    await ensureRedisSettings(redis)
    const schema = createSchema(PREFIX)
    const writer = createIndexWriter(redis, schema)

    progress(`generating ${N} interactions: population ${POPULATION}, Zipf s=${ZIPF_S}`)
    const dids = Array.from({ length: POPULATION }, randomDid)
    const authorRank = shuffled(POPULATION)
    const subjectRank = shuffled(POPULATION)
    const zipf = zipfSampler(POPULATION, ZIPF_S)
    const now = Date.now()
    const span = 47 * HOUR_MS
    const start = now - span - 60_000
    const touches = new Map<string, number>()
    let batch: InteractionCreate[] = []
    const inflight = new Set<Promise<unknown>>()
    let last = 0
    const t0 = performance.now()
    for (let i = 0; i < N; i++) {
      const author = dids[authorRank[zipf()] as number] as string
      let subject = dids[subjectRank[zipf()] as number] as string
      while (subject === author) subject = dids[subjectRank[zipf()] as number] as string
      const micros = Math.max(last + 1, Math.floor((start + (i / N) * span) * 1000))
      last = micros
      const time = Math.floor(micros / 1000)
      const kind = pickKind()
      // Microsecond-unique times and a random clock id give unique TIDs (rkeys are unique per author).
      const rkey = tidFromMs(time, Math.floor(rand() * 1024))
      const chars = kind === 'reply' || kind === 'quote' ? Math.floor(rand() * 300) : 0
      batch.push({ type: 'create', kind, author, subject, rkey, time, chars })
      touches.set(author, (touches.get(author) ?? 0) + 1)
      touches.set(subject, (touches.get(subject) ?? 0) + 1)
      if (batch.length === 2000) {
        // The writer is safe under concurrent, reordered applies: keep a few in flight.
        const p: Promise<unknown> = writer.apply(batch).then(() => inflight.delete(p))
        inflight.add(p)
        batch = []
        if (inflight.size >= 8) await Promise.race(inflight)
      }
    }
    if (batch.length > 0) await writer.apply(batch)
    await Promise.all(inflight)
    const seedS = (performance.now() - t0) / 1000
    progress(`seeded ${N} interactions in ${seedS.toFixed(1)} s (${Math.round(N / seedS)}/s)`)

    // Every profile pre-cached, as after a warm-up: the uncached goals are "profiles from cache".
    const pipe = redis.pipeline()
    dids.forEach((d, i) => {
      pipe.set(
        schema.profile(d),
        JSON.stringify({ did: d, handle: `user${i}.bench.test`, displayName: `User ${i}` }),
        'EX',
        86_400,
      )
    })
    await pipe.exec()
    const history = await seedHeavyHistory(redis, schema)
    progress(
      `history account ${history.actor}: ${history.days} days, ${history.records} records, ${(history.blobBytes / 1e6).toFixed(1)} MB of day blobs`,
    )

    // The roll-up's days up to the cursor the history seed set (23:00 three days ago), from 90 days back.
    const lastDay = Math.floor(Date.now() / DAY_MS) - 3
    const t1 = performance.now()
    const long = await seedLongTerm(
      redis,
      schema,
      { dids, authorRank, subjectRank, zipfS: ZIPF_S },
      { lastDay, days: 88 },
    )
    progress(
      `long-term: ${long.days} days of roll-up blobs, ${long.records} records, ${(long.blobBytes / 1e6).toFixed(1)} MB, in ${((performance.now() - t1) / 1000).toFixed(1)} s`,
    )

    const ranked = [...touches.entries()].sort((a, b) => b[1] - a[1])
    const heaviest = ranked[0]![0]
    const active = ranked.map(([d]) => d)
    // The mix's request ranks: the accounts in order of their rank as authors (api-phases.ts).
    const byActivity = Array.from(authorRank, (i) => dids[i] as string)
    progress(
      `heaviest account ${heaviest}: ${ranked[0]![1]} interactions; ${active.length} active accounts`,
    )

    const started = await startApi(pin, redisServer.url)
    api = started.proc
    const { base } = started
    const pid = api.pid
    progress(
      `API up at ${base} (rate limit ${process.env.BENCH_RATE_LIMIT_MAX ?? 'off'}; ` +
        `${pin.length > 0 ? `API on core ${API_CORE}, load generator and redis-server on core ${LOADGEN_CORE}` : 'not pinned'})`,
    )

    let variant = 0
    // A new weights variant per request: its cache key is new, so the request computes.
    const fresh = () => `weights=like:${1 + (variant % 900)}.${Math.floor(variant++ / 900) % 100}`
    const randomActive = () => active[Math.floor(rand() * active.length)]!

    // Baseline 1: the index reader alone for the heaviest account (in this process), what an uncached
    // circle cannot beat; the API adds profiles, opt-outs, the cache write and HTTP on top.
    const reader = createIndexReader(redis, schema)
    const readerMs: number[] = []
    for (let i = 0; i < 30; i++) {
      const a = performance.now()
      await reader.topPartners({
        did: heaviest,
        direction: 'both',
        windowHours: 48,
        weights: { like: 1 + i / 100, repost: 2, reply: 3, quote: 3 },
        limit: 61,
      })
      readerMs.push(performance.now() - a)
    }
    readerMs.sort((a, b) => a - b)
    const readerP50 = readerMs[15]!
    const readerP99 = readerMs[29]!
    progress(
      `baseline index reader alone, heaviest: p50 ${readerP50.toFixed(1)} ms, max ${readerP99.toFixed(1)} ms`,
    )
    const skipUncached = process.env.BENCH_SKIP_UNCACHED === '1'
    const none: Run = { rps: 0, p50: 0, p99: 0, errors: 0, non2xx: 0, apiCpuUs: 0, loadCpuUs: 0 }
    // Unmeasured first, as the cached phases: a fresh process compiles the computation's hot paths on its
    // first requests, and one or two of those would set a 200-request p99 on their own. The warm-up's
    // accounts come from another generator, so the measured ones stay those of earlier runs.
    const warmRandom = createWorkloadRandom(7).rand
    if (!skipUncached) {
      await cannon(base, () => `/v1/circles/${heaviest}?${fresh()}`, {
        connections: 1,
        amount: UNCACHED_WARMUP,
      })
    }
    const heavy = skipUncached
      ? none
      : await cannon(base, () => `/v1/circles/${heaviest}?${fresh()}`, {
          connections: 1,
          amount: HEAVY_REQUESTS,
          pid,
        })
    progress(
      `uncached heavy: p50 ${heavy.p50} ms, p99 ${heavy.p99} ms, ${heavy.rps} req/s, API CPU ${heavy.apiCpuUs} us/req, errors ${heavy.errors}, non-2xx ${heavy.non2xx}`,
    )

    if (!skipUncached) {
      const pick = () => active[Math.floor(warmRandom() * active.length)]!
      await cannon(base, () => `/v1/circles/${pick()}?${fresh()}`, {
        connections: 1,
        amount: UNCACHED_WARMUP * 10,
      })
    }
    const random = skipUncached
      ? none
      : await cannon(base, () => `/v1/circles/${randomActive()}?${fresh()}`, {
          connections: 1,
          amount: RANDOM_REQUESTS,
          pid,
        })
    progress(
      `uncached random: p50 ${random.p50} ms, p99 ${random.p99} ms, ${random.rps} req/s, API CPU ${random.apiCpuUs} us/req, errors ${random.errors}, non-2xx ${random.non2xx}`,
    )

    const historyOpts = { days: history.days, requests: HISTORY_REQUESTS }
    const hist = await historyRun(base, history.actor, {
      ...historyOpts,
      cpu: () => processCpuSeconds(pid),
    })
    progress(
      `history ${history.days} days: first ${hist.firstMs} ms, then p50 ${hist.p50Ms} ms, p99 ${hist.p99Ms} ms, API CPU ${hist.apiCpuMs} ms/req`,
    )

    // Baseline 2: /healthz on the same server, connections and duration: the framework's floor for a
    // cached circle on this core (same plugins and hooks, a constant body).
    await hammer(base, ['/healthz'], { connections: CONNECTIONS, duration: WARMUP_SECONDS, wrk })
    const floor = await hammer(base, ['/healthz'], {
      connections: CONNECTIONS,
      duration: CACHED_SECONDS,
      pid,
      wrk,
    })
    progress(
      `baseline /healthz: ${floor.rps} req/s, p50 ${floor.p50} ms, p99 ${floor.p99} ms, API CPU ${floor.apiCpuUs} us/req, load generator CPU ${floor.loadCpuUs} us/req`,
    )

    // Cached: the 20 heaviest and 980 random accounts, computed once, then hammered after a warm-up under
    // the same load (JIT, and the in-process copies filled), which is not measured.
    const warm = [...active.slice(0, 20), ...Array.from({ length: 980 }, randomActive)]
    for (const d of warm) await fetch(`${base}/v1/circles/${d}`)
    const cachedPaths = warm.map((d) => `/v1/circles/${d}`)
    const warmUp = { connections: CONNECTIONS, duration: WARMUP_SECONDS, wrk }
    await hammer(base, cachedPaths, warmUp)
    const r0 = await redisCpu(redis)
    const cached = await hammer(base, cachedPaths, {
      connections: CONNECTIONS,
      duration: CACHED_SECONDS,
      pid,
      wrk,
    })
    const redisUs = ((await redisCpu(redis)) - r0) / Math.max(1, cached.rps * CACHED_SECONDS)
    progress(
      `cached: ${cached.rps} req/s, p50 ${cached.p50} ms, p99 ${cached.p99} ms, API CPU ${cached.apiCpuUs} us/req, load generator CPU ${cached.loadCpuUs} us/req, ` +
        `Redis CPU ${(redisUs * 1e6).toFixed(1)} us/req, errors ${cached.errors}, non-2xx ${cached.non2xx}`,
    )
    // After the cached phase, as they were added after it: the heap they leave behind (90-day reads, PNGs)
    // would otherwise be part of what the cached phase measures.
    const more = skipUncached
      ? undefined
      : await longPhases(base, pid, {
          heaviest,
          active,
          fresh,
          requests: LONG_REQUESTS,
          warmup: UNCACHED_WARMUP,
          log: progress,
        })

    // The mix: the cache as the user base leaves it (api-phases.ts), then the measured run; wrk goes
    // round the list in order, so it is cut near what the run asks (past that, repeats are hits).
    const mix = mixedPaths(byActivity, MIXED_PATHS, 9)
    const steady = await steadyCache(base, mix, {
      rps: MIXED_RATE,
      ttlSeconds: 3600,
      seed: 10,
    })
    progress(
      `mixed: ${steady.distinct} distinct requests of ${mix.length}, ${steady.warmed} cached first as at ${MIXED_RATE} req/s for an hour; not 200: ${JSON.stringify(steady.statuses)}`,
    )
    const mixed = await hammer(
      base,
      mix.map((q) => q.path),
      { connections: CONNECTIONS, duration: CACHED_SECONDS, pid, wrk },
    )
    progress(
      `mixed: ${mixed.rps} req/s, p50 ${mixed.p50} ms, p99 ${mixed.p99} ms, API CPU ${mixed.apiCpuUs} us/req, errors ${mixed.errors}, non-2xx ${mixed.non2xx}`,
    )
    const ratio = Math.round((cached.rps / Math.max(1, floor.rps)) * 100) / 100
    progress(
      `ratios: cached/healthz rps ${ratio}, ` +
        `uncached heavy p50 / reader p50 ${(heavy.p50 / Math.max(0.1, readerP50)).toFixed(2)}`,
    )

    // The history baseline: an API process without the memo (every day's blobs read on every request).
    await stopApi(api)
    const plain = await startApi(pin, redisServer.url, { HISTORY_MEMO_DAYS: '0' })
    api = plain.proc
    const noMemo = await historyRun(plain.base, history.actor, {
      ...historyOpts,
      cpu: () => processCpuSeconds(plain.proc.pid),
    })
    progress(
      `history baseline, no memo: p50 ${noMemo.p50Ms} ms, p99 ${noMemo.p99Ms} ms, API CPU ${noMemo.apiCpuMs} ms/req`,
    )

    // The same cached load through the Redis-backed rate limiter (a limit no one reaches), on a third API
    // process: what the limiter costs per request.
    await stopApi(api)
    let limited = none
    if (process.env.BENCH_SKIP_LIMITED !== '1') {
      const second = await startApi(pin, redisServer.url, { RATE_LIMIT_MAX: '1000000000' })
      api = second.proc
      await hammer(second.base, cachedPaths, warmUp)
      limited = await hammer(second.base, cachedPaths, {
        connections: CONNECTIONS,
        duration: CACHED_SECONDS,
        pid: api.pid,
        wrk,
      })
      progress(
        `cached, rate limiter on: ${limited.rps} req/s, p50 ${limited.p50} ms, p99 ${limited.p99} ms, API CPU ${limited.apiCpuUs} us/req, load generator CPU ${limited.loadCpuUs} us/req`,
      )
    }

    const failures =
      heavy.errors +
      heavy.non2xx +
      random.errors +
      random.non2xx +
      cached.errors +
      cached.non2xx +
      floor.errors +
      limited.errors +
      limited.non2xx +
      mixed.errors +
      mixed.non2xx +
      (more?.failures ?? 0)
    if (failures > 0) {
      progress(`WARNING: ${failures} failed requests`)
      process.exitCode = 1
    }
    process.stdout.write(
      `${JSON.stringify({
        bench: 'api',
        cached_rps: cached.rps,
        cached_p99_ms: cached.p99,
        uncached_heavy_p99_ms: heavy.p99,
        uncached_random_p99_ms: random.p99,
        healthz_rps: floor.rps,
        healthz_p99_ms: floor.p99,
        cached_to_healthz: ratio,
        cached_api_cpu_us: cached.apiCpuUs,
        healthz_api_cpu_us: floor.apiCpuUs,
        cached_ratelimited_rps: limited.rps,
        cached_ratelimited_p99_ms: limited.p99,
        history_days: history.days,
        history_first_ms: hist.firstMs,
        history_p50_ms: hist.p50Ms,
        history_p99_ms: hist.p99Ms,
        history_api_cpu_ms: hist.apiCpuMs,
        history_nomemo_p50_ms: noMemo.p50Ms,
        history_nomemo_p99_ms: noMemo.p99Ms,
        history_nomemo_api_cpu_ms: noMemo.apiCpuMs,
        uncached_90d_heavy_p99_ms: more?.long90Heavy.p99 ?? 0,
        uncached_90d_heavy_p50_ms: more?.long90Heavy.p50 ?? 0,
        uncached_90d_random_p99_ms: more?.long90Random.p99 ?? 0,
        uncached_90d_random_p50_ms: more?.long90Random.p50 ?? 0,
        interactions_first_page_p99_ms: more?.interactionsHeavy.p99 ?? 0,
        interactions_first_page_random_p99_ms: more?.interactionsRandom.p99 ?? 0,
        png_uncached_p99_ms: more?.png.p99 ?? 0,
        png_uncached_p50_ms: more?.png.p50 ?? 0,
        mixed_rps: mixed.rps,
        mixed_p99_ms: mixed.p99,
        mixed_p50_ms: mixed.p50,
        long_day_interactions: LONG_DAY_INTERACTIONS,
        pinned: pin.length > 0,
        load_generator: wrk ? 'wrk' : 'autocannon',
      })}\n`,
    )
  } finally {
    await stopApi(api)
    redis.disconnect()
    await redisServer.stop()
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench-api] failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
