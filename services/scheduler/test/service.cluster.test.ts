import { createSchema } from '@circles/redis-schema'
import { connectRedis } from '@circles/redis-wire'
import { haveRedisCli, type PrivateRedisCluster, startRedisCluster } from '@circles/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toConfig } from '../src/config.js'
import { createSchedulerService } from '../src/service.js'
import { memoryLiveHours } from './helpers.js'

// The scheduler on a Redis Cluster (REDIS_CLUSTER_NODES): BullMQ's queues and workers on cluster clients,
// their keys in the one slot of the hash-tagged prefix, jobs scheduled and run, and a clean close.

describe.runIf(haveRedisCli('the scheduler cluster test'))('scheduler on a Redis Cluster', () => {
  let cluster: PrivateRedisCluster
  let redis: Redis
  beforeAll(async () => {
    cluster = await startRedisCluster()
    redis = connectRedis(cluster.target)
  })
  afterAll(async () => {
    redis?.disconnect()
    await cluster?.stop()
  })

  it('schedules and runs its jobs through BullMQ on cluster clients, then stops cleanly', async () => {
    const prefix = `sched-cluster-${process.pid}:`
    const schema = createSchema(prefix)
    const config = toConfig({
      REDIS_CLUSTER_NODES: cluster.seeds,
      REDIS_PREFIX: prefix,
      LOG_LEVEL: 'silent',
      STATS_EVERY_MS: '1000',
      SCHEDULER_HEARTBEAT_MS: '200',
    })
    expect(config.redisClusterNodes).toHaveLength(6)
    const service = createSchedulerService(config, { live: memoryLiveHours(new Map()) })
    await service.start()
    try {
      const deadline = Date.now() + 15_000
      const done = async () =>
        (await redis.exists(schema.globalStats)) === 1 &&
        (await service.queues.stats.getCompletedCount()) > 0
      while (!(await done()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
      expect(await redis.exists(schema.globalStats)).toBe(1)
      expect(await service.queues.stats.getCompletedCount()).toBeGreaterThan(0)
      expect(Number(await redis.get(schema.schedulerHeartbeat))).toBeGreaterThan(Date.now() - 5000)
    } finally {
      await service.close()
    }
    expect(await redis.exists(schema.schedulerHeartbeat)).toBe(0)
  })
})
