import { connectRedis } from '@circles/redis-wire'
import { haveRedisCli, type PrivateRedisCluster, startRedisCluster } from '@circles/testkit'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureRedisSettings, REQUIRED_REDIS_SETTINGS } from '../src/index.js'

// The layout's memory figures need its settings on every server that holds keys: on a cluster each primary
// and each replica (which becomes a primary at a failover), not only the node the client's CONFIG reached.

describe.runIf(haveRedisCli('the Redis settings cluster test'))(
  'Redis settings on a cluster',
  () => {
    let cluster: PrivateRedisCluster

    beforeAll(async () => {
      cluster = await startRedisCluster({ primaries: 3, replicas: 1 })
    }, 90_000)

    afterAll(async () => {
      await cluster?.stop()
    })

    it('raises every setting on every node, primaries and replicas', async () => {
      const client = connectRedis(cluster.target, { lazyConnect: true })
      try {
        await client.connect()
        const report = await ensureRedisSettings(client)
        expect(report.unmet).toEqual({})
        for (const n of cluster.nodes) {
          const node = new Redis(n.port, '127.0.0.1')
          try {
            for (const [name, wanted] of Object.entries(REQUIRED_REDIS_SETTINGS)) {
              const [, value] = (await node.config('GET', name)) as string[]
              expect(Number(value), `${name} on ${n.address}`).toBeGreaterThanOrEqual(wanted)
            }
          } finally {
            node.disconnect()
          }
        }
      } finally {
        client.disconnect()
      }
    })
  },
)
