import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createIndexReader } from '@circles/interaction-index'
import { privateRedisArgs } from '@circles/ops'
import { createSchema, type RedisSchema } from '@circles/redis-schema'
import {
  type CorpusFrame,
  freePort,
  type PrivateRedis,
  startRedisServer,
  startReplayServer,
  synthesizeFrames,
} from '@circles/testkit'
import { Redis } from 'ioredis'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { canonicalExport, groupInfo, indexPart } from './helpers.js'

// The standard the whole pipeline answers to: a crash of Redis itself loses no event and counts none twice.
// Redis runs with AOF (the settings `pnpm start` gives its own Redis: appendfsync everysec) and is killed with
// SIGKILL twice while the real firehose and indexer processes are busy, then started again on the same
// port and data folder. Every answer of the resulting index (each account's partners and counts, each
// hour's roll-up rows) must equal that of an uninterrupted run over the same frames, with as many records
// held. A service that exits on its own is started again after 200 ms, as PM2 would.

const HERE = dirname(fileURLToPath(import.meta.url))
const FIREHOSE_MAIN = resolve(HERE, '../../firehose/dist/src/main.js')
const INDEXER_MAIN = resolve(HERE, '../dist/src/main.js')
const PREFIX = 'restart:'

const frames: CorpusFrame[] = []
const dids: string[] = []
let last = 0
let cleanups: (() => Promise<void>)[] = []

beforeAll(async () => {
  const gen = synthesizeFrames({
    commits: 3000,
    repos: 120,
    seed: 17,
    onRepo: (did) => dids.push(did),
  })
  for await (const f of gen) frames.push(f)
  last = frames.at(-1)?.seq as number
}, 120_000)

afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
  cleanups = []
})

/** A redis-server with the very settings `pnpm start` gives its own (AOF everysec, noeviction) in `dir`. */
async function startAofRedis(dir: string, port?: number): Promise<PrivateRedis> {
  const p = port ?? (await freePort())
  return startRedisServer(privateRedisArgs({ port: p, dataDir: dir }), { port: p })
}

/** Runs a service's built main.js and starts it again 200 ms after any exit it was not asked for. */
function supervise(main: string, env: Record<string, string>) {
  let child: ChildProcess | null = null
  let stopping = false
  let restarts = 0
  const start = () => {
    const c = spawn(process.execPath, [main], {
      env: { ...process.env, LOG_LEVEL: process.env.TEST_SERVICE_LOGS ?? 'silent', ...env },
      stdio: process.env.TEST_SERVICE_LOGS ? 'inherit' : 'ignore',
    })
    c.once('exit', () => {
      if (stopping) return
      restarts++
      setTimeout(start, 200)
    })
    child = c
  }
  start()
  return {
    get restarts() {
      return restarts
    },
    async stop() {
      stopping = true
      const c = child
      if (c && c.exitCode === null && c.signalCode === null) {
        const exited = once(c, 'exit')
        c.kill('SIGTERM')
        await exited
      }
    },
  }
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    // While Redis is down the check throws: that is "not yet".
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

async function cursor(redis: Redis, schema: RedisSchema): Promise<number> {
  return Number((await redis.get(schema.firehoseCursor)) ?? 0)
}

/**
 * Runs the firehose and one indexer over the frames into a fresh AOF Redis until every frame is indexed,
 * calling `during` while they run, and returns the canonical export of the index.
 */
async function runPipeline(
  during: (ctl: { redis: Redis; restartRedis(): Promise<void> }) => Promise<void>,
) {
  const dir = mkdtempSync(join(tmpdir(), 'redis-restart-'))
  let server = await startAofRedis(dir)
  const port = server.port
  cleanups.push(async () => {
    await server.crash()
    rmSync(dir, { recursive: true, force: true })
  })
  const relay = await startReplayServer(frames)
  cleanups.push(() => relay.close())
  const redis = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  cleanups.push(async () => redis.disconnect())
  const schema = createSchema(PREFIX)
  const env = {
    REDIS_URL: `redis://127.0.0.1:${port}`,
    REDIS_PREFIX: PREFIX,
    RELAY_URL: relay.url,
    FIREHOSE_CURSOR: '0',
    // Small batches: many MULTIs and many XACKs, so a kill lands between and inside them.
    FIREHOSE_BATCH_FRAMES: '25',
    FIREHOSE_BACKOFF_MIN_MS: '50',
    FIREHOSE_BACKOFF_MAX_MS: '300',
    FIREHOSE_LAG_CHECK_MS: '100',
    FIREHOSE_MAX_LAG: '20',
    FIREHOSE_RESUME_LAG: '5',
    INDEXER_BATCH_ENTRIES: '3',
    INDEXER_CONSUMER: 'restart-1',
    INDEXER_RETRY_MS: '100',
    INDEXER_CLAIM_IDLE_MS: '1000',
    INDEXER_CLAIM_INTERVAL_MS: '250',
  }
  const firehose = supervise(FIREHOSE_MAIN, env)
  const indexer = supervise(INDEXER_MAIN, env)
  cleanups.push(firehose.stop, indexer.stop)

  await during({
    redis,
    async restartRedis() {
      await server.crash()
      await new Promise((r) => setTimeout(r, 300))
      server = await startAofRedis(dir, port)
    },
  })
  await waitUntil('every frame published', async () => (await cursor(redis, schema)) === last)
  await waitUntil('every entry indexed', async () => {
    const { lag, pending } = await groupInfo(redis, schema.eventStream, schema.indexerGroup)
    return lag === 0 && pending === 0
  })
  await Promise.all([firehose.stop(), indexer.stop()])
  return {
    index: indexPart(await canonicalExport(redis, PREFIX), PREFIX),
    answers: await everyAnswer(redis, schema),
    restarts: firehose.restarts + indexer.restarts,
  }
}

/** What the index answers: every account's partners with counts by kind both ways, and every hour's rows. */
/** Records held in every log of an index export. */
function records(index: Record<string, unknown>): number {
  let n = 0
  for (const [key, v] of Object.entries(index)) {
    if (key.includes(':log')) n += ((v as { value: unknown[] }).value ?? []).length
  }
  return n
}

async function everyAnswer(redis: Redis, schema: RedisSchema) {
  const reader = createIndexReader(redis, schema)
  const weights = { like: 1, repost: 1, reply: 1, quote: 1 }
  const partners: Record<string, unknown> = {}
  for (const did of dids) {
    partners[did] = await reader.topPartners({
      did,
      direction: 'both',
      windowHours: 48,
      weights,
      limit: 10_000,
    })
  }
  const hours: Record<number, unknown[]> = {}
  for (const hour of await reader.hours()) {
    const rows: unknown[] = []
    await reader.scanHour(hour, async (batch) => {
      rows.push(...batch)
    })
    hours[hour] = rows.map((r) => JSON.stringify(r)).sort()
  }
  return { partners, hours }
}

describe('a Redis crash (kill -9, AOF) in the middle of the pipeline', () => {
  it('loses no event and counts none twice: every answer equals that of an uninterrupted run', async () => {
    const whole = await runPipeline(async () => {})
    expect(whole.restarts).toBe(0)
    expect(
      Object.values(whole.answers.partners).filter((p) => (p as unknown[]).length > 0).length,
    ).toBeGreaterThan(50)
    expect(Object.keys(whole.index).length).toBeGreaterThan(100)

    const crashed = await runPipeline(async ({ redis, restartRedis }) => {
      const schema = createSchema(PREFIX)
      // The firehose stays at most FIREHOSE_MAX_LAG entries ahead of the indexer, so both are busy at
      // either kill.
      await waitUntil('a quarter published', async () => (await cursor(redis, schema)) > last / 4)
      await restartRedis()
      await waitUntil(
        'two thirds published',
        async () => (await cursor(redis, schema)) > (2 * last) / 3,
      )
      await restartRedis()
    })
    // Every answer the index gives, the roll-up's hour scans included, is the same: nothing lost, nothing
    // counted twice, and as many records held.
    expect(crashed.answers).toEqual(whole.answers)
    expect(records(crashed.index)).toBe(records(whole.index))
    // Not asserted: key-for-key identity, which the indexer's own kill -9 test shows. A write that fails
    // while Redis is down is retried after the other batch in flight went through, so an account can take
    // two batches' appends in the other order, and which of its records spill into an hourly log follows
    // that order (seen in about one run in four). Which key holds a record changes no answer.
    expect(Object.keys(crashed.index).filter((k) => !k.includes(':log'))).toEqual(
      Object.keys(whole.index).filter((k) => !k.includes(':log')),
    )
  }, 300_000)
})
