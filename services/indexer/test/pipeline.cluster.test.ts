import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createSchema, type RedisSchema, shardsOf } from '@circles/redis-schema'
import { connectRedis, keySlot, type RedisTarget } from '@circles/redis-wire'
import { groupInfo } from '@circles/stream-info'
import {
  type CorpusFrame,
  haveRedisCli,
  type PrivateRedis,
  type PrivateRedisCluster,
  type ReplayServer,
  type ReplayServerOptions,
  startRedisCluster,
  startRedisServer,
  startReplayServer,
  synthesizeFrames,
} from '@circles/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  answerDiff,
  everyAnswer,
  FIREHOSE_MAIN,
  groupCounts,
  INDEXER_MAIN,
  tally,
  waitUntil,
} from './helpers.js'

// The proof that the whole ingest runs on a Redis Cluster: the real firehose and two indexers (built
// main.js, as PM2 runs them) over the same replayed corpus, once on one Redis and once on a 3-primary,
// 3-replica cluster (REDIS_CLUSTER_NODES). Every account's partners, both directions, every window the
// reader serves, and every hour's roll-up rows must be identical; and no service may have met a
// cross-slot error (CROSSSLOT from Redis, or ioredis refusing a pipeline that spans nodes) on the way.
// The cluster runs spread the stream over 2 shards (FIREHOSE_SHARDS, on different primaries), the one-node
// run keeps one: how the events were split must not change an answer.
// Then kill -9 of an indexer and the firehose, and of the primary holding the stream (its replica
// promoted): the same answers, with the services riding it out by themselves.

const PREFIX = 'cluster-proof:'
const CROSS_SLOT = /CROSSSLOT|same slots allocation group|MOVED|ASK /
/** The cluster runs' FIREHOSE_SHARDS. */
const SHARDS = 2

const frames: CorpusFrame[] = []
const dids: string[] = []
let last = 0
let cluster: PrivateRedisCluster | undefined
let single: PrivateRedis | undefined

beforeAll(async () => {
  const gen = synthesizeFrames({ commits: 3000, repos: 120, seed: 23, onRepo: (d) => dids.push(d) })
  for await (const f of gen) frames.push(f)
  last = frames.at(-1)?.seq as number
}, 120_000)

afterAll(async () => {
  await cluster?.stop()
  await single?.stop()
})

function run(main: string, env: Record<string, string>, log: string[]): ChildProcess {
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const keep = (d: Buffer) => log.push(d.toString())
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return child
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
}

/**
 * Runs the firehose and two indexers over the frames into `target` until all is indexed, calling `during`
 * while they run; returns the answers and what the services logged.
 */
async function runPipeline(
  target: RedisTarget,
  env: Record<string, string>,
  during: (
    redis: Redis,
    schema: RedisSchema,
    crash: (i: number) => Promise<void>,
    relay: ReplayServer,
  ) => Promise<void> = async () => {},
  relayOptions: ReplayServerOptions = {},
) {
  const relay = await startReplayServer(frames, relayOptions)
  const redis = connectRedis(target, { maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  const schema = createSchema(PREFIX)
  const shards = Number(env.FIREHOSE_SHARDS ?? 1)
  const log: string[] = []
  const common = {
    ...env,
    REDIS_PREFIX: PREFIX,
    RELAY_URL: relay.url,
    FIREHOSE_CURSOR: '0',
    FIREHOSE_BATCH_FRAMES: '50',
    INDEXER_BATCH_ENTRIES: '5',
    // a killed indexer's entries are taken over soon
    INDEXER_CLAIM_IDLE_MS: '1000',
    INDEXER_CLAIM_INTERVAL_MS: '250',
  }
  const specs: [string, Record<string, string>][] = [
    [FIREHOSE_MAIN, common],
    [INDEXER_MAIN, { ...common, INDEXER_CONSUMER: 'proof-1' }],
    [INDEXER_MAIN, { ...common, INDEXER_CONSUMER: 'proof-2' }],
  ]
  const children = specs.map(([main, e]) => run(main, e, log))
  /** kill -9 of service `i` (0 firehose, 1-2 indexers), started again at once as PM2 would. */
  const crash = async (i: number) => {
    const child = children[i] as ChildProcess
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
    const [main, e] = specs[i] as [string, Record<string, string>]
    children[i] = run(main, e, log)
  }
  try {
    await during(redis, schema, crash, relay)
    await waitUntil(
      'every frame published',
      async () => (await cursor(redis, schema, shards)) === last,
    )
    await waitUntil('every entry indexed', async () => {
      for (const shard of shardsOf(schema, shards)) {
        const { lag, pending } = await groupCounts(redis, shard.stream, schema.indexerGroup)
        if (lag !== 0 || pending !== 0) return false
      }
      return true
    })
    await Promise.all(children.map(stop))
    // a client of its own: the one above saw the failover and may still be settling
    const fresh = connectRedis(target)
    const answers = await everyWindow(fresh, schema).finally(() => fresh.disconnect())
    const exits = children
      .map((c, i) => ({ service: i === 0 ? 'firehose' : `indexer ${i}`, code: c.exitCode }))
      .filter((e) => e.code !== 0)
    return { answers, log: log.join(''), exits }
  } catch (err) {
    // what the services said is the only clue to why they did not finish
    throw new Error(`${(err as Error).message}; the services logged:\n${log.join('').slice(-3000)}`)
  } finally {
    await Promise.all(children.map(stop))
    redis.disconnect()
    await relay.close()
  }
}

/** A fresh cluster (a kill test starts from a healthy one) and the one-node run to compare with. */
async function freshClusterAndOneNodeRun() {
  single ??= await startRedisServer()
  await cluster?.stop()
  cluster = await startRedisCluster()
  const one = await runPipeline(
    { redisUrl: single.url, redisClusterNodes: null },
    { REDIS_URL: single.url },
  )
  return { c: cluster, one }
}

/** The lowest stream shard cursor (what every shard holds up to), 0 while one has none. */
async function cursor(redis: Redis, schema: RedisSchema, shards = SHARDS): Promise<number> {
  const values = await Promise.all(shardsOf(schema, shards).map((s) => redis.get(s.cursor)))
  return Math.min(...values.map((v) => Number(v ?? 0)))
}

/** `everyAnswer` (partners both ways over 48 h, every hour's roll-up rows) plus the shorter windows. */
async function everyWindow(redis: Redis, schema: RedisSchema) {
  const { partners, hours } = await everyAnswer(redis, schema, dids)
  const { createIndexReader } = await import('@circles/interaction-index')
  const reader = createIndexReader(redis, schema)
  const windows: Record<string, unknown> = {}
  for (const windowHours of [1, 6, 24]) {
    for (const did of dids) {
      for (const direction of ['sent', 'received'] as const) {
        windows[`${did} ${direction} ${windowHours}h`] = await reader.topPartners({
          did,
          direction,
          windowHours,
          weights: { like: 1, repost: 1, reply: 1, quote: 1 },
          limit: 10_000,
        })
      }
    }
  }
  return { partners, hours, windows }
}

describe.runIf(haveRedisCli('the cluster pipeline proof'))(
  'the pipeline on a Redis Cluster',
  () => {
    it('answers exactly as on one Redis, with no cross-slot error anywhere', async () => {
      single = await startRedisServer()
      const one = await runPipeline(
        { redisUrl: single.url, redisClusterNodes: null },
        { REDIS_URL: single.url },
      )
      cluster = await startRedisCluster()
      const seeds = cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }))
      const spread = await runPipeline(
        { redisUrl: 'redis://127.0.0.1:6379', redisClusterNodes: seeds },
        { REDIS_CLUSTER_NODES: cluster.seeds, FIREHOSE_SHARDS: String(SHARDS) },
      )
      expect(spread.log.match(CROSS_SLOT)?.[0] ?? null, spread.log.slice(0, 4000)).toBeNull()
      const busy = Object.values(one.answers.partners).filter((p) => (p as unknown[]).length > 0)
      expect(busy.length).toBeGreaterThan(50)
      expect(Object.keys(one.answers.hours).length).toBeGreaterThan(0)
      // both shards carried events, on two primaries
      const c = cluster
      const lengths = await Promise.all(
        shardsOf(createSchema(PREFIX), SHARDS).map(async (s) => {
          const probe = connectRedis(c.target)
          try {
            return { length: await probe.xlen(s.stream), slot: keySlot(s.stream) }
          } finally {
            probe.disconnect()
          }
        }),
      )
      expect(lengths.every((l) => l.length > 0)).toBe(true)
      const owners = await Promise.all(lengths.map((l) => primaryOf(c, l.slot)))
      expect(new Set(owners.map((o) => o.port)).size).toBe(SHARDS)
      expect(answerDiff(spread.answers, one.answers)).toEqual([])
      expect(spread.answers.windows).toEqual(one.answers.windows)
      expect(spread.answers).toEqual(one.answers)
    }, 300_000)

    it('loses and doubles nothing when an indexer and the firehose are killed (kill -9) mid-run', async () => {
      const { c, one } = await freshClusterAndOneNodeRun()
      const spread = await runPipeline(
        c.target,
        { REDIS_CLUSTER_NODES: c.seeds, FIREHOSE_SHARDS: String(SHARDS) },
        async (redis, schema, crash) => {
          await waitUntil('a third published', async () => (await cursor(redis, schema)) > last / 3)
          await crash(1)
          await waitUntil(
            'two thirds published',
            async () => (await cursor(redis, schema)) > (2 * last) / 3,
          )
          await crash(0)
        },
      )
      const measured = tally(spread.answers, one.answers)
      console.log(`kill -9: ${JSON.stringify(measured)}`)
      expect(measured).toMatchObject({ lost: 0, doubled: 0 })
      expect(answerDiff(spread.answers, one.answers)).toEqual([])
    }, 300_000)

    it('loses and doubles nothing when the primary of the stream is killed (kill -9) and its replica promoted mid-run, with no restart', async () => {
      const { c, one } = await freshClusterAndOneNodeRun()
      const half = (frames[Math.floor(frames.length / 2)] as CorpusFrame).seq
      let killed = 0
      const spread = await runPipeline(
        c.target,
        { REDIS_CLUSTER_NODES: c.seeds, FIREHOSE_SHARDS: String(SHARDS) },
        async (redis, schema, _crash, relay) => {
          // the relay holds the second half back: the firehose publishes it across the failover
          await waitUntil('half published', async () => (await cursor(redis, schema)) === half)
          await waitUntil('the indexers at work', async () => {
            const info = await groupInfo(redis, schema.eventStream, schema.indexerGroup)
            return (info?.entriesRead ?? 0) > 0
          })
          // the primary of the stream's slot (stream, cursor, group, part of the index): the firehose,
          // both indexers and a third of the index writes lose it, and its replica may lack its last writes
          const owner = await primaryOf(c, keySlot(schema.eventStream))
          killed = owner.port
          await owner.server.crash()
          await c.waitOk(30_000)
          relay.release()
        },
        { releasedThrough: half },
      )
      expect(killed).toBeGreaterThan(0)
      // nobody exited (a service that had would not have been started again: the run would not finish)
      expect(spread.exits, spread.log.slice(-4000)).toEqual([])
      const measured = tally(spread.answers, one.answers)
      console.log(`failover: killed primary :${killed}; ${JSON.stringify(measured)}`)
      expect(measured.held).toBeGreaterThan(0)
      expect(measured).toMatchObject({ lost: 0, doubled: 0 })
      expect(answerDiff(spread.answers, one.answers)).toEqual([])
      expect(spread.answers).toEqual(one.answers)
    }, 300_000)
  },
)

/** The primary that serves `slot` now (a failover changes it). */
async function primaryOf(c: PrivateRedisCluster, slot: number) {
  const probe = connectRedis(c.target)
  try {
    const ranges = (await probe.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][]
    const range = ranges.find(([from, to]) => slot >= from && slot <= to)
    return c.node(range?.[2][1] as number)
  } finally {
    probe.disconnect()
  }
}
