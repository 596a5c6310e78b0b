// pnpm bench:e2e: a replayed corpus of real signed commits (testkit's synthetic corpus, cached in
// packages/testkit/corpus/bench.e2e.large.bin and remade once a day, so its times stay inside the 48-hour
// window) through the built firehose, indexer and API processes (`services/*/dist/src/main.js`, one each) on a
// private redis-server, in three phases on one corpus, Redis flushed between them:
//   baseline  the firehose alone, nobody consuming: the pipeline's first stage, so catch-up / baseline says how
//             much of the ingest speed survives the indexing behind it (the replay server alone would only
//             say how fast buffers are copied, and raw XADDs how fast Redis appends, neither a stage here);
//   catch-up  the whole pipeline at full speed: commits/s from the firehose's connection to the moment the
//             indexer has applied everything (cursor at the last seq, group lag 0, nothing pending);
//   live      the relay paced at BENCH_LIVE_RATE commits/s; for every create of BENCH_ACCOUNTS random authors,
//             freshness = the time the response of `/v1/interactions/:author` that first shows it arrived
//             minus the commit's time, defined as the instant the bench's relay released its frame to the
//             socket (the relay's send time; the record's own times are the corpus's, made earlier).
// The scheduler is not started: nothing on the way to `/v1/interactions` goes through it.
// Env: BENCH_COMMITS (100000; a cached corpus at least that big is reused), BENCH_REPOS (300; another count
// gets its own corpus file), BENCH_LIVE_RATE (2000), BENCH_LIVE_SECONDS (20), BENCH_ACCOUNTS (16),
// BENCH_POLL_MS (100), BENCH_CPU_PROF (a directory: CPU profiles of the services).
// Progress on stderr, one JSON line last on stdout.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { statSync, unlinkSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createSchema } from '@circles/redis-schema'
import { groupInfo } from '@circles/stream-info'
import {
  type CorpusFrame,
  ensureLargeCorpus,
  frameType,
  freePort,
  type PrivateRedis,
  processCpuSeconds,
  type ReplayServer,
  startRedisServer,
  startReplayServer,
} from '@circles/testkit'
import { Redis } from 'ioredis'
import { planSamples, type SamplePlan, watchAccount } from './e2e-samples.js'

const root = fileURLToPath(new URL('../../../../', import.meta.url))
const COMMITS = Number(process.env.BENCH_COMMITS ?? 100_000)
/** Repos (accounts) the corpus's commits come from: fewer means bigger per-account logs in the index. */
const REPOS = Number(process.env.BENCH_REPOS ?? 300)
const LIVE_RATE = Number(process.env.BENCH_LIVE_RATE ?? 2000)
const LIVE_SECONDS = Number(process.env.BENCH_LIVE_SECONDS ?? 20)
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 16)
const POLL_MS = Number(process.env.BENCH_POLL_MS ?? 100)
const CORPUS = `${root}packages/testkit/corpus/bench.e2e${REPOS === 300 ? '' : `-${REPOS}`}.large.bin`
const CORPUS_MAX_AGE_MS = 24 * 3600_000
/** A V8 CPU profile of every service process, written to this directory when each exits. */
const profileArgs = process.env.BENCH_CPU_PROF
  ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
  : []
const PREFIX = 'e2e:'
const schema = createSchema(PREFIX)
type Service = 'firehose' | 'indexer' | 'fart'

const log = (line: string) =>
  process.stderr.write(
    `${new Date().toISOString().slice(11, 19)} load ${loadavg()[0]?.toFixed(1)} ${line}\n`,
  )
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Pipeline {
  procs: Map<Service, ChildProcess>
  api: string
  stop(): Promise<void>
}

/** Starts the given services on the private Redis (the firehose last, once the indexer's group exists). */
async function startPipeline(
  services: Service[],
  redisUrl: string,
  relayUrl: string,
  extraEnv: Record<string, string> = {},
): Promise<Pipeline> {
  const port = await freePort()
  const env = {
    ...process.env,
    REDIS_URL: redisUrl,
    REDIS_PREFIX: PREFIX,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    RELAY_URL: relayUrl,
    FIREHOSE_CURSOR: '0',
    FIREHOSE_CHECKPOINT_FILE: '',
    API_LISTS_FILE: '',
    HOST: '127.0.0.1',
    PORT: String(port),
    RATE_LIMIT_MAX: '0',
    METRICS_PORT: '0',
    APPVIEW_URL: 'http://127.0.0.1:9', // never asked: every profile is pre-cached
    ...extraEnv,
  }
  const procs = new Map<Service, ChildProcess>()
  const api = `http://127.0.0.1:${port}`
  const stop = async () => {
    for (const child of procs.values()) {
      if (child.exitCode !== null || child.signalCode !== null) continue
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
  }
  const spawnService = (s: Service) =>
    procs.set(
      s,
      spawn(process.execPath, [...profileArgs, `${root}services/${s}/dist/src/main.js`], {
        env,
        // their logs to stderr with the progress: stdout keeps only the JSON line
        stdio: ['ignore', 2, 2],
      }),
    )
  const redis = new Redis(redisUrl)
  try {
    for (const s of services.filter((s) => s !== 'firehose')) spawnService(s)
    if (services.includes('fart')) await until(async () => (await fetch(`${api}/healthz`)).ok)
    if (services.includes('indexer'))
      await until(async () => !!(await groupInfo(redis, schema.eventStream, schema.indexerGroup)))
    if (services.includes('firehose')) spawnService('firehose')
  } catch (err) {
    await stop()
    throw err
  } finally {
    redis.disconnect()
  }
  return { procs, api, stop }
}

/** Waits (30 s at most) until `ok` resolves true; a throw counts as "not yet". */
async function until(ok: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    if (await ok().catch(() => false)) return
    if (performance.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms`)
    await sleep(10)
  }
}

/** Whether the firehose has published through `seq` and (with `indexed`) the indexer applied it all. */
async function caughtUp(redis: Redis, seq: number, indexed: boolean): Promise<boolean> {
  if (Number((await redis.get(schema.firehoseCursor)) ?? 0) < seq) return false
  if (!indexed) return true
  const g = await groupInfo(redis, schema.eventStream, schema.indexerGroup)
  return g !== undefined && g.lag === 0 && g.pending === 0
}

interface Timed {
  seconds: number
  /** Seconds until the firehose's cursor reached the last seq. */
  firehoseSeconds: number
  cpu: Record<string, number>
}

/** One full-speed replay of every frame through `services`; timed from the firehose's connection. */
async function fullSpeed(
  frames: CorpusFrame[],
  services: Service[],
  redisServer: PrivateRedis,
  redis: Redis,
  extraEnv: Record<string, string> = {},
): Promise<Timed> {
  const lastSeq = (frames.at(-1) as CorpusFrame).seq
  const indexed = services.includes('indexer')
  const relay = await startReplayServer(frames)
  const pipeline = await startPipeline(services, redisServer.url, relay.url, extraEnv)
  try {
    const redisCpu0 = await redisCpuSeconds(redis)
    await redis.config('RESETSTAT')
    const cpu0 = new Map([...pipeline.procs].map(([s, p]) => [s, processCpuSeconds(p.pid)]))
    const bench0 = process.cpuUsage()
    while (relay.connections === 0) await sleep(1)
    const t0 = performance.now()
    let firehoseAt = 0
    while (!(await caughtUp(redis, lastSeq, indexed))) {
      if (firehoseAt === 0 && (await caughtUp(redis, lastSeq, false)))
        firehoseAt = performance.now()
      for (const [s, p] of pipeline.procs)
        if (p.exitCode !== null) throw new Error(`${s} exited with ${p.exitCode}`)
      await sleep(5)
    }
    const t1 = performance.now()
    const cpu: Record<string, number> = { redis: (await redisCpuSeconds(redis)) - redisCpu0 }
    for (const [s, p] of pipeline.procs) cpu[s] = processCpuSeconds(p.pid) - (cpu0.get(s) ?? 0)
    const bench = process.cpuUsage(bench0)
    cpu['bench (relay, polls)'] = (bench.user + bench.system) / 1e6
    log(`Redis's time by command: ${await topCommands(redis)}`)
    return {
      seconds: (t1 - t0) / 1000,
      firehoseSeconds: ((firehoseAt || t1) - t0) / 1000,
      cpu,
    }
  } finally {
    await pipeline.stop()
    await relay.close()
  }
}

async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu')
  const get = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? 0)
  return get('used_cpu_sys') + get('used_cpu_user')
}

/** The commands Redis spent most time in since RESETSTAT (INFO commandstats): where its CPU went. */
async function topCommands(redis: Redis): Promise<string> {
  const rows = [
    ...(await redis.info('commandstats')).matchAll(/cmdstat_(\S+?):calls=(\d+),usec=(\d+)/g),
  ]
  return rows
    .map(([, cmd, calls, usec]) => ({ cmd, calls: Number(calls), s: Number(usec) / 1e6 }))
    .sort((a, b) => b.s - a.s)
    .slice(0, 6)
    .map((r) => `${r.cmd} ${r.s.toFixed(2)} s/${r.calls}`)
    .join(', ')
}

/** Profiles of every DID the watched frames name, cached as after a warm-up (the AppView is never asked). */
async function cacheProfiles(redis: Redis, dids: Iterable<string>): Promise<void> {
  const pipe = redis.pipeline()
  let i = 0
  for (const d of dids) {
    const profile = { did: d, handle: `user${i}.bench.test`, displayName: `User ${i++}` }
    pipe.set(schema.profile(d), JSON.stringify(profile), 'EX', 86_400)
  }
  await pipe.exec()
}

/**
 * The live phase: frames [0, warm) (each repo's identity and first commit) go out at once and are applied
 * before the clock starts; then the relay releases frames [warm, end) at LIVE_RATE, in 5 ms steps, stamping
 * each frame's send time, while one poller per sampled account watches `/v1/interactions`.
 */
async function live(
  frames: CorpusFrame[],
  warm: number,
  end: number,
  plan: SamplePlan,
  redisServer: PrivateRedis,
  redis: Redis,
): Promise<{ freshness: number[]; rate: number; lagMax: number; published: number[] }> {
  const relay: ReplayServer = await startReplayServer(frames.slice(0, end), {
    releasedThrough: (frames[warm - 1] as CorpusFrame).seq,
  })
  const pipeline = await startPipeline(['fart', 'indexer', 'firehose'], redisServer.url, relay.url)
  const sentAt = new Float64Array(end)
  const freshness: number[] = []
  let stopped = false
  let lagMax = 0
  try {
    await until(() => caughtUp(redis, (frames[warm - 1] as CorpusFrame).seq, true), 60_000)
    // After the warm-up: the indexer drops an account's cached profile on its #identity frame.
    await cacheProfiles(redis, plan.dids)
    const published = trackPublished(redis, frames, warm, end, sentAt, () => stopped)
    const watchers = [...plan.byAuthor].map(([did, samples]) =>
      watchAccount(pipeline.api, did, samples, sentAt, POLL_MS, () => stopped, freshness),
    )
    const t0 = performance.now()
    let next = warm
    while (next < end) {
      await sleep(5)
      const now = performance.now()
      const target = Math.min(end, warm + Math.floor(((now - t0) / 1000) * LIVE_RATE))
      if (target <= next) continue
      sentAt.fill(now, next, target)
      relay.release((frames[target - 1] as CorpusFrame).seq)
      next = target
      const g = await groupInfo(redis, schema.eventStream, schema.indexerGroup)
      lagMax = Math.max(lagMax, g?.lag ?? 0)
    }
    const rate = (end - warm) / ((performance.now() - t0) / 1000)
    const deadline = setTimeout(() => {
      stopped = true
    }, 15_000)
    await Promise.all(watchers)
    clearTimeout(deadline)
    stopped = true
    return { freshness, rate, lagMax, published: await published }
  } finally {
    stopped = true
    await pipeline.stop()
    await relay.close()
  }
}

/**
 * The firehose's share of freshness: for each paced frame, the time from its release until the firehose's
 * stored cursor reached it (the cursor moves in the same MULTI as the XADD, so the frame is then in the
 * stream), read every 5 ms. What is left of freshness is the indexer's, the API's and the poll's.
 */
async function trackPublished(
  redis: Redis,
  frames: CorpusFrame[],
  warm: number,
  end: number,
  sentAt: Float64Array,
  stopped: () => boolean,
): Promise<number[]> {
  const out: number[] = []
  let next = warm
  while (next < end && !stopped()) {
    await sleep(5)
    const cursor = Number((await redis.get(schema.firehoseCursor)) ?? 0)
    const now = performance.now()
    for (; next < end && (frames[next] as CorpusFrame).seq <= cursor; next++)
      out.push(now - (sentAt[next] as number))
  }
  return out
}

function cpuLine(t: Timed): string {
  return Object.entries(t.cpu)
    .map(([s, c]) => `${s} ${c.toFixed(2)}`)
    .join(', ')
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
}

async function loadCorpus(): Promise<CorpusFrame[]> {
  try {
    if (Date.now() - statSync(CORPUS).mtimeMs > CORPUS_MAX_AGE_MS) {
      log('corpus: older than a day, its times near the end of the 48-hour window: remaking it')
      unlinkSync(CORPUS)
    }
  } catch {}
  return ensureLargeCorpus(CORPUS, {
    commits: COMMITS,
    repos: REPOS,
    seed: 11,
    startMs: Date.now() - 3600_000,
    log,
  })
}

const frames = await loadCorpus()
const commits = frames.filter((f) => frameType(f.data) === '#commit').length
const warm = 2 * REPOS
const liveEnd = Math.min(frames.length, warm + LIVE_RATE * LIVE_SECONDS)
log(`corpus: ${frames.length} frames, ${commits} commits; live phase: frames ${warm}..${liveEnd}`)
const plan = await planSamples(frames, warm, liveEnd, ACCOUNTS)
log(`samples: ${plan.total} creates of ${plan.byAuthor.size} accounts`)

const redisServer = await startRedisServer()
const redis = new Redis(redisServer.url)
try {
  log('baseline: the firehose alone (nobody consuming; lag bound and MAXLEN lifted)')
  const base = await fullSpeed(frames, ['firehose'], redisServer, redis, {
    FIREHOSE_MAX_LAG: '100000000',
    FIREHOSE_RESUME_LAG: '0',
    FIREHOSE_MAXLEN: '1000000000',
  })
  const baseRate = commits / base.seconds
  log(
    `baseline: ${baseRate.toFixed(0)} commits/s (${base.seconds.toFixed(2)} s); CPU s: ${cpuLine(base)}`,
  )
  await redis.flushall() // the private server only

  log('catch-up: firehose + indexer + API at full speed')
  const catchup = await fullSpeed(frames, ['fart', 'indexer', 'firehose'], redisServer, redis)
  const catchupRate = commits / catchup.seconds
  log(
    `catch-up: ${catchupRate.toFixed(0)} commits/s (${catchup.seconds.toFixed(2)} s; firehose done at ` +
      `${catchup.firehoseSeconds.toFixed(2)} s); CPU s: ${cpuLine(catchup)}`,
  )
  await redis.flushall()

  log(
    `live: ${LIVE_RATE} commits/s for ${LIVE_SECONDS} s, ${ACCOUNTS} accounts polled every ${POLL_MS} ms`,
  )
  const l = await live(frames, warm, liveEnd, plan, redisServer, redis)
  const seen = l.freshness.length
  log(
    `live: paced at ${l.rate.toFixed(0)} frames/s; ${seen}/${plan.total} samples seen; max group lag ` +
      `${l.lagMax} entries; freshness p50 ${quantile(l.freshness, 0.5).toFixed(0)} ms, p90 ` +
      `${quantile(l.freshness, 0.9).toFixed(0)} ms, p99 ${quantile(l.freshness, 0.99).toFixed(0)} ms, max ` +
      `${Math.max(...l.freshness).toFixed(0)} ms`,
  )
  log(
    `live: relay -> stream (firehose) p50 ${quantile(l.published, 0.5).toFixed(0)} ms, p99 ` +
      `${quantile(l.published, 0.99).toFixed(0)} ms over ${l.published.length} frames`,
  )
  if (seen < plan.total) log(`WARNING: ${plan.total - seen} samples never showed within 15 s`)
  const round = (x: number, d = 0) => Math.round(x * 10 ** d) / 10 ** d
  console.log(
    JSON.stringify({
      bench: 'e2e',
      freshness_p50_ms: round(quantile(l.freshness, 0.5)),
      freshness_p99_ms: round(quantile(l.freshness, 0.99)),
      catchup_commits_per_s: round(catchupRate),
      baseline_firehose_commits_per_s: round(baseRate),
      catchup_to_baseline: round(catchupRate / baseRate, 2),
      live_commits_per_s: round(l.rate),
      firehose_p99_ms: round(quantile(l.published, 0.99)),
      samples: plan.total,
      samples_seen: seen,
      commits,
    }),
  )
} finally {
  redis.disconnect()
  await redisServer.stop()
}
