import {
  haveRedisCli,
  type PrivateRedisCluster,
  startRedisCluster,
  TEST_REDIS_URL,
} from '@circles/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectRedis, isCluster, primaries } from '../src/index.js'

describe.runIf(haveRedisCli('the cluster client test'))('connectRedis', () => {
  let cluster: PrivateRedisCluster
  beforeAll(async () => {
    cluster = await startRedisCluster()
  })
  afterAll(async () => {
    await cluster?.stop()
  })

  it('without cluster nodes: one Redis at REDIS_URL, as before', async () => {
    const redis = connectRedis({ redisUrl: TEST_REDIS_URL, redisClusterNodes: null })
    try {
      expect(isCluster(redis)).toBe(false)
      expect(primaries(redis)).toEqual([redis])
      expect(await redis.ping()).toBe('PONG')
    } finally {
      redis.disconnect()
    }
  })

  it('with REDIS_CLUSTER_NODES: a cluster client that reaches every primary, with the given options', async () => {
    // one seed is enough: the client learns the other nodes from it
    const seeds = [{ host: '127.0.0.1', port: cluster.nodes[0]?.port as number }]
    const redis = connectRedis(
      { redisUrl: 'redis://127.0.0.1:6379', redisClusterNodes: seeds },
      { lazyConnect: true, maxRetriesPerRequest: 2 },
    )
    try {
      expect(isCluster(redis)).toBe(true)
      await redis.connect()
      const keys = Array.from({ length: 30 }, (_, i) => `client-test:${i}`)
      for (const k of keys) await redis.set(k, '1')
      const nodes = primaries(redis)
      expect(nodes.map((n) => n.options.port).sort()).toEqual(
        (await cluster.primaries()).map((n) => n.port).sort(),
      )
      expect(nodes.every((n) => n.options.maxRetriesPerRequest === 2)).toBe(true)
      const sizes = await Promise.all(nodes.map((n) => n.dbsize()))
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(keys.length)
    } finally {
      redis.disconnect()
    }
  })
})
