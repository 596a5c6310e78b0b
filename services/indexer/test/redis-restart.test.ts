import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeEvents, type StreamEvent } from '@circles/core'
import { createIndexWriter } from '@circles/interaction-index'
import { BUSY_PIPELINE_ENV, privateRedisArgs } from '@circles/ops'
import { createSchema, type RedisSchema } from '@circles/redis-schema'
import {
  type CorpusFrame,
  type PrivateRedis,
  startRedisServer,
  startReplayServer,
  startRollbackRedis,
  synthesizeFrames,
} from '@circles/testkit'
import { Redis } from 'ioredis'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { toConfig } from '../src/config.js'
import { createIndexerService } from '../src/service.js'
import {
  answerDiff,
  canonicalExport,
  create,
  everyAnswer,
  FIREHOSE_MAIN,
  groupCounts,
  INDEXER_MAIN,
  indexPart,
  plc,
  waitDrained,
  waitUntil,
} from './helpers.js'

// The standard the whole pipeline answers to: a crash of Redis itself loses no event and counts none twice.
// Redis runs with AOF (the settings `pnpm start` gives its own Redis: appendfsync everysec) and is killed with
// SIGKILL twice while the real firehose and indexer processes are busy, then started again on the same
// port and data folder. Every answer of the resulting index (each account's partners and counts, each
// hour's roll-up rows) must equal that of an uninterrupted run over the same frames, with as many records
// held. A service that exits on its own is started again after 200 ms, as PM2 would.

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
  return startRedisServer(privateRedisArgs({ dataDir: dir }), { port })
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
    ...BUSY_PIPELINE_ENV,
    INDEXER_CONSUMER: 'restart-1',
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
    const { lag, pending } = await groupCounts(redis, schema.eventStream, schema.indexerGroup)
    return lag === 0 && pending === 0
  })
  await Promise.all([firehose.stop(), indexer.stop()])
  return {
    index: indexPart(await canonicalExport(redis, PREFIX), PREFIX),
    answers: await everyAnswer(redis, schema, dids),
    restarts: firehose.restarts + indexer.restarts,
  }
}

/**
 * Each account's records (main log and spill logs together: which one holds a record may differ), with
 * every record that says "gone" reduced to its rkey, direction and record type: a delete applied before its
 * create (the order of a retried batch after a crash) leaves one unknown-delete tombstone where the
 * uninterrupted run marked the records deleted: one for a post that both replied and quoted, where the
 * other run holds two (seen once in CI, 2026-12-06: 5505 records against 5506, every answer equal).
 */
function recordsByAccount(index: Record<string, unknown>): Map<string, string[]> {
  const byAccount = new Map<string, Set<string>>()
  for (const [key, v] of Object.entries(index)) {
    if (!key.includes(':log')) continue
    const account = key.slice(0, key.indexOf(':log'))
    const set = byAccount.get(account) ?? new Set<string>()
    byAccount.set(account, set)
    for (const hex of (v as { value?: string[] }).value ?? []) {
      const code = Number.parseInt(hex.slice(16, 18), 16)
      // bits 0-1 kind (like, repost, reply, quote), 0x04 inbound, 0x08 deleted, 0x10 unknown-delete tombstone
      const gone = (code & 0x18) !== 0
      const type = (code & 0x10) !== 0 ? code & 3 : Math.min(code & 3, 2)
      set.add(gone ? `${hex.slice(0, 16)} gone ${code & 0x04} ${type}` : hex)
    }
  }
  return new Map([...byAccount].map(([k, v]) => [k, [...v].sort()]))
}

/** The accounts whose records differ, for the message of a failed comparison. */
function recordDiff(got: Record<string, unknown>, want: Record<string, unknown>): string[] {
  const a = recordsByAccount(got)
  const b = recordsByAccount(want)
  const out: string[] = []
  for (const account of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(account) ?? []
    const y = b.get(account) ?? []
    if (JSON.stringify(x) !== JSON.stringify(y))
      out.push(`${account}: records ${JSON.stringify(x)}, uninterrupted run ${JSON.stringify(y)}`)
  }
  return out
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
    // counted twice, and the same records held (a deleted one may be a tombstone instead, see above).
    expect(answerDiff(crashed.answers, whole.answers)).toEqual([])
    expect(crashed.answers).toEqual(whole.answers)
    expect(recordDiff(crashed.index, whole.index)).toEqual([])
    // Not asserted: key-for-key identity, which the indexer's own kill -9 test shows. A write that fails
    // while Redis is down is retried after the other batch in flight went through, so an account can take
    // two batches' appends in the other order, and which of its records spill into an hourly log follows
    // that order (seen in about one run in four). Which key holds a record changes no answer.
    expect(Object.keys(crashed.index).filter((k) => !k.includes(':log'))).toEqual(
      Object.keys(whole.index).filter((k) => !k.includes(':log')),
    )
  }, 300_000)

  it('writes again what Redis acknowledged and then lost, DID table and hour index included', async () => {
    // With appendfsync everysec, Redis answers writes before they reach the AOF while its background fsync
    // runs (the write waits up to 2 s), and a kill -9 then loses them: Redis comes back as it was a moment
    // before. Emulated exactly here: a snapshot (RDB, no AOF), more writes, kill -9, a restart from the
    // snapshot. The entries come back unread (their XADD was lost too, as the firehose then publishes them
    // again from its stored cursor), and everything they wrote must be written again: the indexer may not
    // trust what it remembers having written before the crash.
    const server = await startRollbackRedis()
    cleanups.push(() => server.stop())
    const redis = server.redis
    const schema = createSchema('lost:')
    const publish = (events: StreamEvent[]) =>
      redis.xadd(schema.eventStream, '*', 'e', encodeEvents(events))
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => plc(`lost-${name}`)) as [
      string,
      string,
      string,
      string,
    ]
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000
    const kept = [create(a, b, 'like', hour - 2 * 3_600_000 + 1000)]
    // New accounts (DID table), a new author of the hour and a new hour (hour index)
    const lost = [
      create(c, d, 'like', hour - 3_600_000 + 1000),
      create(c, a, 'repost', hour - 3_600_000 + 2000),
    ]
    const indexer = createIndexerService(
      toConfig({
        REDIS_URL: server.url,
        REDIS_PREFIX: 'lost:',
        INDEXER_CONSUMER: 'lost-1',
        INDEXER_BLOCK_MS: '100',
        INDEXER_RETRY_MS: '100',
        INDEXER_CLAIM_IDLE_MS: '1000',
        INDEXER_CLAIM_INTERVAL_MS: '250',
      }),
    )
    await publish(kept)
    await indexer.start()
    cleanups.push(() => indexer.close())
    await waitDrained(redis, schema.eventStream, schema.indexerGroup)
    await server.snapshot()
    await publish(lost)
    await waitDrained(redis, schema.eventStream, schema.indexerGroup)
    await server.rollback()
    await waitUntil('the restarted Redis', async () => (await redis.ping()) === 'PONG')
    expect(await redis.xlen(schema.eventStream)).toBe(1)
    await publish(lost)
    await waitDrained(redis, schema.eventStream, schema.indexerGroup)
    await indexer.close()

    const ref = createSchema('lostref:')
    const writer = createIndexWriter(redis, ref)
    await writer.apply([...kept, ...lost])
    await writer.close()
    const want = await everyAnswer(redis, ref, [a, b, c, d])
    expect(Object.keys(want.hours)).toHaveLength(2)
    const got = await everyAnswer(redis, schema, [a, b, c, d])
    expect(answerDiff(got, want)).toEqual([])
    expect(got).toEqual(want)
  }, 60_000)
})
