import { execFile } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createSchema } from '@circles/redis-schema'
import { groupInfo } from '@circles/stream-info'
import {
  type CorpusFrame,
  freePort,
  type PrivateRedis,
  pollUntil,
  type ReplayServer,
  startRedisServer,
  startReplayServer,
  synthesizeFrames,
} from '@circles/testkit'
import { Redis } from 'ioredis'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { BUSY_PIPELINE_ENV, everyAnswer } from '../src/chaos-support.js'
import { repoRoot } from '../src/paths.js'
import { privateRedisArgs } from '../src/private-redis.js'
import { tempDir } from '../src/test-helpers.js'

// The four services as an operator runs them: `pm2 start ecosystem.config.cjs` (a private PM2_HOME, so the
// test's daemon is its own), settings through the environment only, against a private Redis and a replay
// server standing in for the relay. Once with nothing done to it; once with `pm2 reload all` in the middle
// of the stream and then a kill -9 of every app's process (PM2 starts each again). Both must leave the
// same index: nothing lost, nothing counted twice. Needs the build (`pnpm build`).

const run = promisify(execFile)
const PM2 = createRequire(import.meta.url).resolve('pm2/bin/pm2')
const ROOT = repoRoot()
const PREFIX = 'pm2t:'
const schema = createSchema(PREFIX)
const APPS = ['firehose', 'indexer', 'scheduler', 'fart']

const frames: CorpusFrame[] = []
const dids: string[] = []
let last = 0
let cleanups: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  for await (const f of synthesizeFrames({
    commits: 4000,
    repos: 120,
    seed: 23,
    onRepo: (did) => dids.push(did),
  })) {
    frames.push(f)
  }
  last = frames.at(-1)?.seq as number
}, 120_000)

afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
  cleanups = []
})

interface Pm2Proc {
  name: string
  pid: number
  pm2_env: { status: string; restart_time: number; node_args?: string[] }
}

/** One pipeline under its own PM2 daemon, Redis, relay and folders. */
async function startPipeline(relayOptions: { releasedThrough?: number } = {}) {
  const home = tempDir('pm2')
  cleanups.push(() => rm(home, { recursive: true, force: true }))
  // The settings `pnpm start` gives its own Redis (AOF everysec, noeviction): the doctor asks for them.
  const redis: PrivateRedis = await startRedisServer(privateRedisArgs({ dataDir: home }))
  cleanups.push(() => redis.stop())
  const relay: ReplayServer = await startReplayServer(frames, relayOptions)
  cleanups.push(() => relay.close())
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PM2_HOME: home,
    REDIS_URL: redis.url,
    REDIS_PREFIX: PREFIX,
    RELAY_URL: relay.url,
    FIREHOSE_CURSOR: '0',
    DATA_DIR: join(home, 'data'),
    LOG_DIR: join(home, 'logs'),
    HOST: '127.0.0.1',
    PORT: String(await freePort()),
    // Both services busy when PM2 reloads and kills them.
    ...BUSY_PIPELINE_ENV,
    FIREHOSE_METRICS_MS: '500',
    INDEXER_METRICS_MS: '500',
    SCHEDULER_HEARTBEAT_MS: '1000',
    LOG_LEVEL: 'warn',
  }
  const pm2 = async (...args: string[]) =>
    (await run(process.execPath, [PM2, ...args], { cwd: ROOT, env, maxBuffer: 1 << 24 })).stdout
  // Always: a PM2 daemon left behind would keep the services (and their ports) alive after the test.
  cleanups.push(() => pm2('kill'))
  await pm2('start', 'ecosystem.config.cjs')
  const reader = new Redis(redis.url, { maxRetriesPerRequest: 1 })
  cleanups.push(async () => reader.disconnect())
  const list = async () => JSON.parse(await pm2('jlist')) as Pm2Proc[]
  const cursor = async () => Number((await reader.get(schema.firehoseCursor)) ?? 0)
  const drained = async () => {
    const g = await groupInfo(reader, schema.eventStream, schema.indexerGroup)
    return g !== undefined && g.lag === 0 && g.pending === 0
  }
  const progress = async () => ({ cursor: await cursor(), drained: await drained() })
  return { env, pm2, list, cursor, drained, progress, reader, relay }
}

type Pipeline = Awaited<ReturnType<typeof startPipeline>>

async function allOnline(p: Pipeline): Promise<Pm2Proc[]> {
  const procs = await pollUntil(
    () => p.list(),
    (l) => l.length === APPS.length && l.every((x) => x.pm2_env.status === 'online'),
    { timeoutMs: 60_000 },
  )
  expect(procs.map((x) => `${x.name} ${x.pm2_env.status}`).sort()).toEqual(
    APPS.map((a) => `${a} online`).sort(),
  )
  return procs
}

/** Waits until every frame is in the stream and every entry indexed, then reads every account's partners. */
async function finish(p: Pipeline) {
  await pollUntil(p.progress, (x) => x.cursor === last && x.drained, { timeoutMs: 120_000 })
  expect(await p.cursor()).toBe(last)
  expect(await p.drained()).toBe(true)
  // The partners only: the roll-up (running here, unlike in the indexer's chaos tests) may take an hour's
  // rows at another moment in each run.
  return (await everyAnswer(p.reader, schema, dids)).partners
}

/** `pnpm run doctor`'s script, with the services' environment: its exit code and what it printed. */
async function doctor(p: Pipeline): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, [join(ROOT, 'scripts/doctor.mjs')], {
      cwd: ROOT,
      env: p.env,
    })
    return { code: 0, out: stdout }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return { code: e.code ?? -1, out: `${e.stdout}${e.stderr}` }
  }
}

async function expectDoctorGreen(p: Pipeline): Promise<void> {
  const { code, out } = await doctor(p)
  expect(code, out).toBe(0)
  expect(out).toMatch(/All checks passed/)
}

describe('PM2 runs ecosystem.config.cjs', () => {
  it('keeps every interaction exactly once through pm2 reload all and a kill -9 of each app', async () => {
    const whole = await startPipeline()
    await allOnline(whole)
    const want = await finish(whole)
    for (const c of cleanups.reverse()) await c()
    cleanups = []
    expect(Object.values(want).filter((l) => (l as unknown[]).length > 0).length).toBeGreaterThan(
      50,
    )

    // A third of the corpus first, and the doctor's word on the running system.
    const p = await startPipeline({ releasedThrough: Math.floor(last / 3) })
    await allOnline(p)
    const third = Math.floor(last / 3)
    await pollUntil(p.progress, (x) => x.cursor === third && x.drained, { timeoutMs: 60_000 })
    await expectDoctorGreen(p)

    // The rest trickles in (about 200 frames a second) while PM2 reloads and kills, so that every
    // disruption lands in a flowing stream; then all of it.
    let released = third
    const trickle = setInterval(() => {
      released = Math.min(released + 10, last - 1)
      p.relay.release(released)
    }, 50)
    cleanups.push(async () => clearInterval(trickle))
    await pollUntil(p.cursor, (c) => c > third + 100, { timeoutMs: 60_000, pollMs: 20 })
    const atReload = await p.cursor()
    await p.pm2('reload', 'all')
    await allOnline(p)
    for (const name of APPS) {
      const proc = (await p.list()).find((x) => x.name === name) as Pm2Proc
      process.kill(proc.pid, 'SIGKILL')
      const again = await pollUntil(
        async () => (await p.list()).find((x) => x.name === name),
        (x) => x !== undefined && x.pid !== proc.pid && x.pm2_env.status === 'online',
        { timeoutMs: 30_000 },
      )
      expect(again?.pid, `${name} started again`).not.toBe(proc.pid)
    }
    const afterKills = await p.cursor()
    clearInterval(trickle)
    p.relay.release()
    expect(afterKills, 'the stream flowed through the reload and the kills').toBeGreaterThan(
      atReload,
    )
    expect(afterKills).toBeLessThan(last)
    const got = await finish(p)
    const procs = await allOnline(p)
    // Each app was restarted by PM2: once by the reload (not counted as a restart by PM2 7) or the kill.
    for (const x of procs) expect(x.pm2_env.restart_time, x.name).toBeGreaterThanOrEqual(1)
    expect(got).toEqual(want)
    // The API runs with the GC flags the ecosystem file gives it (its benchmarks were tuned with them).
    // (Its /proc cmdline cannot tell: PM2's fork container sets the process title over it.)
    const fart = procs.find((x) => x.name === 'fart')
    expect(fart?.pm2_env.node_args).toEqual(
      expect.arrayContaining(['--single-threaded-gc', '--max-semi-space-size=2']),
    )
    await expectDoctorGreen(p)
  }, 400_000)
})
