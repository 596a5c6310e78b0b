import { REQUIRED_REDIS_SETTINGS } from '@circles/interaction-index'
import { createSchema } from '@circles/redis-schema'
import { connectRedis, primaries, serverMemory } from '@circles/redis-wire'
import { haveRedisCli, type PrivateRedisCluster, startRedisCluster } from '@circles/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runDoctor } from '../src/doctor.js'

// `pnpm run doctor` on a Redis Cluster (REDIS_CLUSTER_NODES): every check green on a healthy system, the
// server checks made on every primary (a setting wrong on one of them is found), the memory line summing
// every primary.

describe.runIf(haveRedisCli('the doctor cluster test'))('doctor on a Redis Cluster', () => {
  let cluster: PrivateRedisCluster
  let redis: Redis
  const schema = createSchema('doctor-cluster:')
  beforeAll(async () => {
    const settings = Object.entries(REQUIRED_REDIS_SETTINGS).flatMap(([k, v]) => [
      `--${k}`,
      String(v),
    ])
    cluster = await startRedisCluster({ replicas: 0, args: ['--appendonly', 'yes', ...settings] })
    redis = connectRedis(cluster.target, { maxRetriesPerRequest: 1 })
    // A healthy system: the stream read and acked by its group, a fresh heartbeat, a live firehose.
    await redis.xadd(schema.eventStream, '*', 'e', 'x')
    await redis.xgroup('CREATE', schema.eventStream, schema.indexerGroup, '0')
    const read = (await redis.xreadgroup(
      'GROUP',
      schema.indexerGroup,
      'indexer-0',
      'COUNT',
      10,
      'STREAMS',
      schema.eventStream,
      '>',
    )) as [string, [string, string[]][]][]
    await redis.xack(
      schema.eventStream,
      schema.indexerGroup,
      ...(read[0]?.[1].map(([id]) => id) ?? []),
    )
    await redis.set(schema.firehoseCursor, '42')
    await redis.set(schema.schedulerHeartbeat, String(Date.now()), 'PX', 60_000)
    await redis.hset(schema.firehoseMetrics, {
      state: 'reading',
      updatedAt: Date.now(),
      lagMs: 500,
      interactionsPerSecond: 100,
    })
    await redis.hset(schema.indexerMetrics, { 'seen:indexer-0': Date.now(), 'rate:indexer-0': 10 })
  }, 60_000)
  afterAll(async () => {
    redis?.disconnect()
    await cluster?.stop()
  })

  it('is green, checks every primary, and sums their memory', async () => {
    const nodes = primaries(redis)
    expect(nodes).toHaveLength(3)
    const { ok, checks } = await runDoctor({ redis, schema })
    expect(checks.filter((c) => c.status !== 'ok')).toEqual([])
    expect(ok).toBe(true)
    expect(checks.find((c) => c.name === 'redis persistence')?.message).toMatch(/every primary: 3/)
    const memory = checks.find((c) => c.name === 'redis memory')
    expect(memory?.message).toMatch(/used on 3 primaries; 100 interactions\/s needs/)
    // The sum: what each primary says it uses, added up (within what the reads in between allocate).
    const used = await Promise.all(
      nodes.map(async (n) => Number(/used_memory:(\d+)/.exec(await n.info('memory'))?.[1])),
    )
    const mem = await serverMemory(redis)
    expect(mem.nodes).toBe(3)
    const sum = used.reduce((a, b) => a + b, 0)
    expect(Math.abs(mem.used - sum)).toBeLessThan(Math.min(...used) / 2)
    expect(mem.used).toBeGreaterThan(2 * Math.max(...used))

    // A primary without persistence fails the check, named.
    const last = nodes[2] as Redis
    await last.config('SET', 'appendonly', 'no')
    try {
      const after = await runDoctor({ redis, schema })
      const persistence = after.checks.find((c) => c.name === 'redis persistence')
      expect(persistence?.status).toBe('fail')
      expect(persistence?.message).toContain(`${last.options.host}:${last.options.port}`)
      expect(after.ok).toBe(false)
    } finally {
      await last.config('SET', 'appendonly', 'yes')
    }
  })
})
