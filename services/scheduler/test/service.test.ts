import { JOB_KINDS } from '@circles/redis-schema'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { toConfig } from '../src/config.js'
import { acquireLock } from '../src/lock.js'
import { createSchedulerQueues, createSchedulerService } from '../src/service.js'
import { memoryLiveHours } from './helpers.js'

describe('scheduler service', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('sched-service')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  function config(env: Record<string, string> = {}) {
    return toConfig({ REDIS_URL: t.url, REDIS_PREFIX: t.prefix, LOG_LEVEL: 'silent', ...env })
  }

  it('registers each schedule once however often it starts, and keeps the latest interval', async () => {
    for (const every of ['60000', '60000', '120000']) {
      const service = createSchedulerService(config({ STATS_EVERY_MS: every }), {
        live: memoryLiveHours(new Map()),
      })
      await service.start()
      await service.close()
      await service.close() // idempotent
    }
    const queues = createSchedulerQueues(t.redis, t.schema)
    try {
      for (const kind of JOB_KINDS) {
        const schedulers = await queues[kind].getJobSchedulers()
        expect(schedulers.map((s) => s.key)).toEqual([kind])
      }
      const [stats] = await queues.stats.getJobSchedulers()
      expect(Number(stats?.every)).toBe(120000)
      // Queue keys carry the configured prefix.
      const keys = await t.redis.keys(`${t.schema.bullPrefix}:stats:*`)
      expect(keys.length).toBeGreaterThan(0)
    } finally {
      await Promise.all(Object.values(queues).map((q) => q.close()))
    }
  })

  it('runs scheduled jobs through BullMQ, beats its heartbeat, and stops cleanly', async () => {
    const service = createSchedulerService(
      config({ STATS_EVERY_MS: '1000', SCHEDULER_HEARTBEAT_MS: '200' }),
      { live: memoryLiveHours(new Map()) },
    )
    await service.start()
    try {
      const beat = Number(await t.redis.get(t.schema.schedulerHeartbeat))
      expect(Date.now() - beat).toBeLessThan(5000)
      expect(await t.redis.pttl(t.schema.schedulerHeartbeat)).toBeGreaterThan(0)
      // The job writes the document before BullMQ records it as completed: wait for both (the gap was
      // seen once on a loaded machine, with the prune's first run beside it).
      const deadline = Date.now() + 10_000
      const done = async () =>
        (await t.redis.exists(t.schema.globalStats)) === 1 &&
        (await service.queues.stats.getCompletedCount()) > 0
      while (!(await done()) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(await t.redis.exists(t.schema.globalStats)).toBe(1)
      expect(await service.queues.stats.getCompletedCount()).toBeGreaterThan(0)
    } finally {
      await service.close()
    }
    expect(await t.redis.exists(t.schema.schedulerHeartbeat)).toBe(0)
  })

  it('never runs two jobs of one kind at once, even from two processes', async () => {
    // Not started: no scheduled job competes for the lock; runNow connects on first use.
    const service = createSchedulerService(config(), { live: memoryLiveHours(new Map()) })
    // Another process holds the roll-up lock: this run is skipped, not run beside it.
    const held = await acquireLock(t.redis, t.schema.schedulerLock('rollup'), 10_000)
    expect(held).not.toBeNull()
    expect(await acquireLock(t.redis, t.schema.schedulerLock('rollup'), 10_000)).toBeNull()
    try {
      expect(await service.runNow('rollup')).toBeNull()
      await held?.release()
      expect(await service.runNow('rollup')).toEqual({
        forgot: expect.objectContaining({ accounts: 0, invalid: 0 }),
        cursor: null,
        freed: [],
        rolled: [],
      })
      expect(await t.redis.exists(t.schema.schedulerLock('rollup'))).toBe(0)
      // The prune sweeps a slice of the DID table: 8192 buckets over 24 hourly runs by default.
      expect(await service.runNow('prune')).toMatchObject({
        longTermFields: 0,
        didTable: { from: 0, buckets: 342, next: 342, stopped: null },
      })
      expect(await t.redis.get(t.schema.didTableSweepCursor)).toBe('342')
    } finally {
      await service.close()
    }
  })
})
