import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { decodeEvents, type StreamEvent } from '@circles/core'
import { createSchema, shardsOf } from '@circles/redis-schema'
import {
  type CorpusFrame,
  ensureLargeCorpus,
  frameType,
  type PrivateRedis,
  startRedisServer,
  startReplayServer,
} from '@circles/testkit'
import { Redis } from 'ioredis'

// `pnpm bench:firehose`: replays the large corpus (>= 100,000 real signed commits, generated once and
// cached, see packages/testkit) from a loopback websocket server that sends as fast as the client
// reads, into a private redis-server, twice in one run:
//   (a) baseline: stock @skyware/firehose, one XADD per interaction as events arrive (child process);
//   (b) the firehose service, as in production: `node services/firehose/dist/src/main.js` (child
//       process, so its peak RSS is its own: VmHWM from /proc).
// Each run is timed from the client's connection to the moment the last seq is published (b: the
// stored cursor reaches it). Progress goes to stderr; the last stdout line is the JSON result.
// Env: BENCH_COMMITS (default 100000), BENCH_CORPUS (default packages/testkit/corpus/bench.large.bin),
// BENCH_RUNS (default 3: baseline and service alternate, medians reported), BENCH_PROFILE_DIR
// (CPU profiles of the service runs).

const root = fileURLToPath(new URL('../../../../', import.meta.url))
const commitsWanted = Number(process.env.BENCH_COMMITS ?? 100_000)
// Runs alternate baseline and service; the result takes the median of each (the machines are noisy).
const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 3))
// Set to a directory to get a V8 CPU profile of each service run (written when it exits).
const profileDir = process.env.BENCH_PROFILE_DIR
const corpusPath = process.env.BENCH_CORPUS ?? `${root}packages/testkit/corpus/bench.large.bin`
const serviceMain = `${root}services/firehose/dist/src/main.js`
const baselineMain = fileURLToPath(new URL('./baseline-client.js', import.meta.url))
const nullMain = fileURLToPath(new URL('./null-client.js', import.meta.url))
const PREFIX = 'bench:'
const schema = createSchema(PREFIX)
// FIREHOSE_SHARDS passes through to the service: its streams are all counted and compared.
const shards = shardsOf(schema, Number(process.env.FIREHOSE_SHARDS ?? 1))
// The baseline writes under its own prefix so the two outputs can be compared after the last run.
const BASE_PREFIX = 'base:'
const baseSchema = createSchema(BASE_PREFIX)

const log = (line: string) =>
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)

interface RunResult {
  seconds: number
  events: number
  peakRssMb: number | null
  /** CPU seconds the client process spent between connecting and finishing. */
  cpuSeconds: number | null
}

/** CPU time (user + system) of a live process so far, from /proc (Linux). */
async function cpuSeconds(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // USER_HZ is 100 on Linux
  } catch {
    return null
  }
}

function spawnNode(
  script: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stderr?.on('data', (d: Buffer) => process.stderr.write(d))
  return child
}

/** Peak resident set size of a live process, from /proc (Linux). */
async function peakRssMb(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const kb = Number(/VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1])
    return Number.isFinite(kb) ? Math.round(kb / 1024) : null
  } catch {
    return null
  }
}

async function waitForConnection(replay: { connections: number }, before: number): Promise<number> {
  while (replay.connections === before) await new Promise((r) => setTimeout(r, 2))
  return performance.now()
}

/** How fast the replay server can send here: a client that reads and drops every frame. */
async function runCeiling(frames: CorpusFrame[]): Promise<number> {
  const replay = await startReplayServer(frames)
  const child = spawnNode(nullMain, { RELAY_URL: replay.url, FRAMES: String(frames.length) })
  const t0 = await waitForConnection(replay, 0)
  const [code] = (await once(child, 'exit')) as [number | null]
  const seconds = (performance.now() - t0) / 1000
  await replay.close()
  if (code !== 0) throw new Error(`null client exited with ${code}`)
  return seconds
}

async function runBaseline(
  frames: CorpusFrame[],
  redisServer: PrivateRedis,
  lastSeq: number,
  commits: number,
): Promise<RunResult> {
  const replay = await startReplayServer(frames)
  const child = spawnNode(baselineMain, {
    RELAY_URL: replay.url,
    REDIS_URL: redisServer.url,
    REDIS_PREFIX: BASE_PREFIX,
    LAST_SEQ: String(lastSeq),
    COMMITS: String(commits),
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const t0 = await waitForConnection(replay, 0)
  const cpu0 = await cpuSeconds(child.pid as number)
  let sent = -1
  let sentAt = t0
  const progress = setInterval(() => {
    const now = performance.now()
    log(
      `baseline: ${replay.framesSent}/${frames.length} frames sent after ${((now - t0) / 1000).toFixed(0)} s`,
    )
    if (replay.framesSent !== sent) {
      sent = replay.framesSent
      sentAt = now
    } else if (now - sentAt > 60_000) {
      log('baseline: nothing sent and not finished for 60 s: killing it')
      child.kill('SIGKILL')
    }
  }, 5000)
  const [code] = (await once(child, 'exit')) as [number | null]
  const t1 = performance.now()
  clearInterval(progress)
  await replay.close()
  if (code !== 0) throw new Error(`baseline exited with ${code}`)
  const result = JSON.parse(out.trim().split('\n').pop() as string) as {
    xadds: number
    failed: number
    cpu_s: number
  }
  if (result.failed > 0) throw new Error(`baseline: ${result.failed} XADDs failed`)
  return {
    seconds: (t1 - t0) / 1000,
    events: result.xadds,
    peakRssMb: null,
    cpuSeconds: cpu0 === null ? null : result.cpu_s - cpu0,
  }
}

async function runService(
  frames: CorpusFrame[],
  redisServer: PrivateRedis,
  lastSeq: number,
): Promise<RunResult> {
  const replay = await startReplayServer(frames)
  const redis = new Redis(redisServer.url)
  const child = spawnNode(
    serviceMain,
    {
      RELAY_URL: replay.url,
      REDIS_URL: redisServer.url,
      REDIS_PREFIX: PREFIX,
      FIREHOSE_CURSOR: '0',
      // Nobody consumes the stream here: lift the lag bound and the MAXLEN guard out of the way.
      FIREHOSE_MAX_LAG: '100000000',
      FIREHOSE_RESUME_LAG: '0',
      FIREHOSE_MAXLEN: '1000000000',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    },
    profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
  )
  child.stdout?.on('data', (d: Buffer) => process.stderr.write(d))
  const exited = once(child, 'exit')
  const t0 = await waitForConnection(replay, 0)
  const cpu0 = await cpuSeconds(child.pid as number)
  let lastLog = t0
  let cursor = 0
  let movedAt = t0
  while (cursor < lastSeq) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}`)
    await new Promise((r) => setTimeout(r, 10))
    const stored = await Promise.all(shards.map((s) => redis.get(s.cursor)))
    const next = Math.min(...stored.map((v) => Number(v ?? 0)))
    const now = performance.now()
    if (next !== cursor) movedAt = now
    cursor = next
    if (now - movedAt > 60_000) {
      child.kill('SIGKILL')
      throw new Error(
        `the service's cursor stayed at ${cursor} for 60 s (paused? see its log above)`,
      )
    }
    if (now - lastLog > 5000) {
      lastLog = now
      const s = (now - t0) / 1000
      log(
        `service: cursor ${cursor}/${lastSeq} after ${s.toFixed(0)} s (${(cursor / s).toFixed(0)} frames/s)`,
      )
    }
  }
  const t1 = performance.now()
  const peak = await peakRssMb(child.pid as number)
  const cpu1 = await cpuSeconds(child.pid as number)
  child.kill('SIGTERM')
  const [code] = (await exited) as [number | null]
  if (code !== 0) log(`service: exited with ${code} after SIGTERM`)
  await replay.close()
  const events = await countStreamEvents(redis)
  redis.disconnect()
  const cpu = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0
  return { seconds: (t1 - t0) / 1000, events, peakRssMb: peak, cpuSeconds: cpu }
}

// Wall-clock rates fall when other processes take the cores; commits per CPU-second of the client
// process is what one uncontended core would do, and shows through the noise.
function perCpu(r: RunResult): string {
  if (r.cpuSeconds === null || r.cpuSeconds <= 0) return ''
  return `; client CPU ${r.cpuSeconds.toFixed(1)} s = ${(commits / r.cpuSeconds).toFixed(0)} commits per CPU-second`
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

async function countStreamEvents(redis: Redis): Promise<number> {
  let n = 0
  for (const s of shards) {
    await eachStreamEvent(redis, s.stream, () => {
      n++
    })
  }
  return n
}

async function eachStreamEvent(
  redis: Redis,
  stream: string,
  fn: (e: StreamEvent) => void,
): Promise<void> {
  let start = '-'
  for (;;) {
    const batch = await redis.xrange(stream, start, '+', 'COUNT', 1000)
    for (const [, fields] of batch) {
      const i = fields.indexOf('e')
      if (i >= 0) for (const e of decodeEvents(fields[i + 1] as string)) fn(e)
    }
    if (batch.length < 1000) return
    start = `(${(batch[batch.length - 1] as [string, string[]])[0]}`
  }
}

/** Compares the two streams as multisets of events (order differs: the baseline's XADDs race). */
async function compareOutputs(redis: Redis): Promise<string[]> {
  const counts = new Map<string, number>()
  const key = (e: StreamEvent) => JSON.stringify(e, Object.keys(e).sort())
  await eachStreamEvent(redis, baseSchema.eventStream, (e) => {
    const k = key(e)
    counts.set(k, (counts.get(k) ?? 0) + 1)
  })
  for (const s of shards) {
    await eachStreamEvent(redis, s.stream, (e) => {
      const k = key(e)
      counts.set(k, (counts.get(k) ?? 0) - 1)
    })
  }
  const diffs: string[] = []
  for (const [k, n] of counts) {
    if (n !== 0) diffs.push(`${n > 0 ? `baseline only x${n}` : `service only x${-n}`}: ${k}`)
  }
  return diffs
}

const frames = await ensureLargeCorpus(corpusPath, { commits: commitsWanted, log })
let commits = 0
for (const f of frames) if (frameType(f.data) === '#commit') commits++
const lastSeq = frames.reduce((m, f) => Math.max(m, f.seq), 0)
const mb = frames.reduce((s, f) => s + f.data.byteLength, 0) / 1e6
log(`corpus: ${frames.length} frames, ${commits} commits, ${mb.toFixed(0)} MB, last seq ${lastSeq}`)
log(
  `machine: ${cpus().length} cpus (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GB`,
)

const redisServer = await startRedisServer()
const admin = new Redis(redisServer.url)
try {
  const ceiling = await runCeiling(frames)
  log(`replay server alone (client drops frames): ${(frames.length / ceiling).toFixed(0)} frames/s`)
  const baseRates: number[] = []
  const svcRates: number[] = []
  const peaks: number[] = []
  for (let run = 1; run <= runs; run++) {
    log(`run ${run}/${runs}: baseline: stock @skyware/firehose, one XADD per interaction`)
    const base = await runBaseline(frames, redisServer, lastSeq, commits)
    baseRates.push(commits / base.seconds)
    log(
      `baseline: ${(commits / base.seconds).toFixed(0)} commits/s, ${base.events} events in ${base.seconds.toFixed(1)} s${perCpu(base)}`,
    )

    log(`run ${run}/${runs}: service: node services/firehose/dist/src/main.js`)
    const svc = await runService(frames, redisServer, lastSeq)
    svcRates.push(commits / svc.seconds)
    if (svc.peakRssMb !== null) peaks.push(svc.peakRssMb)
    log(
      `service: ${(commits / svc.seconds).toFixed(0)} commits/s, ${svc.events} events in ${svc.seconds.toFixed(1)} s, peak RSS ${svc.peakRssMb} MB${perCpu(svc)}`,
    )
    if (svc.events !== base.events) {
      log(`WARNING: the service published ${svc.events} events, the baseline ${base.events}`)
    }
    if (run === runs) {
      const diffs = await compareOutputs(admin)
      if (diffs.length === 0)
        log(`outputs: the service and the baseline published the same ${svc.events} events`)
      else {
        log(`WARNING: the outputs differ in ${diffs.length} events, e.g.:`)
        for (const d of diffs.slice(0, 5)) log(`  ${d}`)
      }
    }
    await admin.flushall() // the private server only
  }
  const round = (x: number, d = 0) => Math.round(x * 10 ** d) / 10 ** d
  const X = round(median(svcRates))
  const Y = round(median(baseRates))
  log(`medians of ${runs} alternating runs; peak RSS is the highest of the service runs`)
  console.log(
    JSON.stringify({
      bench: 'firehose',
      shards: shards.length,
      commits,
      commits_per_s: X,
      baseline_commits_per_s: Y,
      ratio: round(X / Y, 2),
      peak_rss_mb: peaks.length > 0 ? Math.max(...peaks) : null,
    }),
  )
} finally {
  admin.disconnect()
  await redisServer.stop()
}
