import { BACKFILL_QUEUE, backfillQueueOptions, enqueueBackfill } from '@circles/backfill'
import { HOUR_MS } from '@circles/core'
import {
  changeOptOuts,
  createIndexWriter,
  DID_TABLE_BUCKETS,
  didId,
  didTableBucket,
  FOREVER_MS,
  rememberDids,
} from '@circles/interaction-index'
import { rootLogger } from '@circles/logging'
import { primaries } from '@circles/redis-wire'
import {
  CROSS_SLOT_ERROR,
  captureLogLines,
  dumpByPrefix,
  haveRedisCli,
  startRedisCluster,
  startRedisServer,
} from '@circles/testkit'
import { Queue } from 'bullmq'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toConfig } from '../src/config.js'
import type { HourRow } from '../src/live-source.js'
import { createSchedulerRegistry } from '../src/prometheus.js'
import { createSchedulerService } from '../src/service.js'
import { readSnapshots } from '../src/snapshots.js'
import {
  dump,
  keysOf,
  normalise,
  storedAggregatesOf,
  type Target,
  targetOf,
} from './cluster-helpers.js'
import { makeDids, makeEvents, writeBackfilled } from './helpers.js'

// The scheduler's jobs on a Redis Cluster against one Redis, same data, same clock: the real service's
// jobs (runNow: lock, fence, the job's own code), roll-ups of several hours, snapshots, stats, the forget
// step for a deleted and an opted-out account (every key family, the DID table, caches, queued backfill
// jobs), and the prune with its DID table sweep. Every job result, every aggregate, the stats document,
// the snapshots and the keys left must be identical, and nothing may meet a cross-slot error (thrown, or
// in a log line).

const CURRENT = Math.floor(Date.now() / HOUR_MS)
const WRITTEN = [CURRENT - 6, CURRENT - 5, CURRENT - 4]
const LIVE = [CURRENT - 3, CURRENT - 2, CURRENT - 1]
const NOW_AFTER = (CURRENT - 4 + 48) * HOUR_MS + 1
const NOW_LATER = NOW_AFTER + HOUR_MS
const PREFIX = 'jobs-cluster:'
/** When the indexer purged the deleted account: one time for both runs, whose keys are compared. */
const PURGED_AT = Date.now()

const dids = makeDids(60, 41)
const X = dids[1] as string // deleted
const Y = dids[3] as string // opted out
const P = dids[2] as string
// only a DID table entry: the sweep reclaims them (not the did:webs, which makeDids names alike)
const quiet = makeDids(20, 43).filter((d) => !dids.includes(d))
const { events } = makeEvents(dids, [...WRITTEN, ...LIVE], 250, 9)

/** Runs every job over the same data on `target`; what it answered and left. */
async function scenario(target: Target): Promise<Record<string, unknown>> {
  const { redis, schema } = target
  const config = toConfig({
    ...target.env,
    REDIS_PREFIX: PREFIX,
    PRUNE_EVERY_MS: String(24 * HOUR_MS),
    DID_TABLE_SWEEP_HOURS: '1',
  })
  let clock = NOW_AFTER
  const service = createSchedulerService(config, { now: () => clock })
  const writer = createIndexWriter(redis, schema)
  const out: Record<string, unknown> = {}
  try {
    await writer.apply(events)
    // A repo's history: the day before (the snapshots sum it) and one past the retention (the prune's).
    const today = Math.floor(CURRENT / 24)
    const backfilled: [number, HourRow[]][] = [
      [(today - 1) * 24, makeRows()],
      [(today - 120) * 24, makeRows()],
    ]
    await writeBackfilled(redis, schema, backfilled)
    await rememberDids(redis, schema, quiet)
    out.rollup = await service.runNow('rollup')
    await redis.sadd(schema.tracked, X, Y, P, ...dids.slice(10, 20))
    for (const d of [X, Y, P]) {
      await redis.set(schema.profile(d), JSON.stringify({ did: d, handle: `${d.slice(-6)}.test` }))
      await redis.set(schema.circle(d, 'abc1'), '{}')
      await redis.zadd(schema.circleRequests, NOW_AFTER, d)
      await redis.hset(schema.backfillRepo(d), 'state', 'done')
    }
    const backfills = new Queue(BACKFILL_QUEUE, {
      connection: redis,
      ...backfillQueueOptions(schema),
    })
    for (const d of [X, P]) await enqueueBackfill(backfills, d, 'request')
    await backfills.close()
    out.snapshots = await service.runNow('snapshots')
    out.stats = await service.runNow('stats')
    out.statsDoc = JSON.parse((await redis.get(schema.globalStats)) ?? 'null')
    // X deleted, Y opted out: the indexer's side (purge, queue), then the roll-up forgets first.
    await changeOptOuts(redis, schema, [{ did: Y, reason: 'admin', on: true }])
    await writer.purge(X, PURGED_AT)
    await writer.purge(Y, FOREVER_MS)
    await redis.zadd(schema.forgetQueue, PURGED_AT, X, PURGED_AT, Y)
    clock = NOW_LATER
    out.rollupForget = await service.runNow('rollup')
    out.prune = await service.runNow('prune')
    out.aggregates = await storedAggregatesOf(redis, schema, dids)
    out.snapshotsOf = await Promise.all(
      [P, ...dids.slice(10, 20)].map((d) => readSnapshots(redis, schema, d)),
    )
    out.table = await Promise.all(
      [...dids, ...quiet].map(async (d) => {
        const v = await redis.hgetBuffer(schema.didTable(didTableBucket(didId(d))), didId(d))
        return v === null ? null : v.length
      }),
    )
    out.keys = await keysOf(redis, PREFIX)
    // And what they hold, but BullMQ's (its job hashes carry their times).
    const dump = await dumpByPrefix(primaries(redis), PREFIX)
    out.values = [...dump].filter(([k]) => !k.includes('{bull}')).map(([k, v]) => `${k} ${v}`)
    return normalise(out) as Record<string, unknown>
  } finally {
    await writer.close()
    await service.close()
  }
}

/** Backfilled rows of one hour (a repo's history: `bs`/`br`), X and P in many. */
function makeRows(): HourRow[] {
  return dids.slice(0, 30).flatMap((a, i) => {
    const b = dids[(i * 7 + 3) % 30] as string
    return a === b
      ? []
      : [{ author: a, subject: b, kind: i % 2 ? 'like' : 'reply', count: 1 + (i % 3) }]
  })
}

describe.runIf(haveRedisCli('the scheduler jobs cluster test'))(
  'scheduler jobs on a Redis Cluster',
  () => {
    const stops: (() => Promise<void>)[] = []
    let single: Target
    let cluster: Target
    beforeAll(async () => {
      const one = await startRedisServer()
      stops.push(() => one.stop())
      const many = await startRedisCluster({ replicas: 0 })
      stops.push(() => many.stop())
      single = targetOf({ redisUrl: one.url, redisClusterNodes: null }, PREFIX)
      cluster = targetOf(many.target, PREFIX, many.seeds)
    }, 60_000)
    afterAll(async () => {
      single?.redis.disconnect()
      cluster?.redis.disconnect()
      for (const stop of stops) await stop()
    })

    it('answers and leaves the same on 3 primaries as on one Redis, without a cross-slot error', async () => {
      const logs = captureLogLines(rootLogger)
      let one: Record<string, unknown>
      let many: Record<string, unknown>
      try {
        one = await scenario(single)
        many = await scenario(cluster)
      } finally {
        logs.stop()
      }
      expect(logs.lines.filter((l) => CROSS_SLOT_ERROR.test(l))).toEqual([])
      // The run did something: two roll-ups, both accounts forgotten, the quiet entries reclaimed.
      const rolled = (one.rollup as { rolled: unknown[] }).rolled
      expect(rolled).toHaveLength(WRITTEN.length)
      expect(one.rollupForget).toMatchObject({ forgot: { accounts: 2, tableReclaimed: 2 } })
      expect(one.snapshots).toMatchObject({ accounts: 13 })
      expect(JSON.stringify(one.snapshotsOf)).toMatch(/"like":[1-9]/)
      expect((one.prune as { longTermFields: number }).longTermFields).toBeGreaterThan(0)
      expect(one.prune).toMatchObject({
        didTable: { reclaimed: quiet.length, buckets: DID_TABLE_BUCKETS },
      })
      // Nothing names them but their purge marks (the indexer's).
      const naming = (keys: unknown) =>
        (keys as string[]).filter((k) => k.includes(X) || k.includes(Y))
      expect(naming(one.keys)).toEqual(
        [single.schema.accountPurged(X), single.schema.accountPurged(Y)]
          .map((k) => k.slice(PREFIX.length))
          .sort(),
      )
      for (const part of Object.keys(one)) expect(dump(many[part]), part).toEqual(dump(one[part]))
    }, 180_000)

    it('its metrics sum the memory of every primary', async () => {
      const prom = createSchedulerRegistry({
        redis: cluster.redis,
        schema: cluster.schema,
        live: { hours: async () => [] },
        liveWindowHours: 48,
        queues: {} as Parameters<typeof createSchedulerRegistry>[0]['queues'],
        now: Date.now,
      })
      const metric = await prom.registry.getSingleMetric('circles_redis_used_memory_bytes')?.get()
      const used = Number(metric?.values[0]?.value)
      const each = await Promise.all(
        primaries(cluster.redis).map(async (n) =>
          Number(/used_memory:(\d+)/.exec(await n.info('memory'))?.[1]),
        ),
      )
      expect(each).toHaveLength(3)
      expect(used).toBeGreaterThan(2 * Math.max(...each))
      expect(Math.abs(used - each.reduce((a, b) => a + b, 0))).toBeLessThan(Math.min(...each) / 2)
    })
  },
)
