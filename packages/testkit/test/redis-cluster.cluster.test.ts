import { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { haveRedisCli, type PrivateRedisCluster, startRedisCluster } from '../src/index.js'

describe.runIf(haveRedisCli('the Redis Cluster harness test'))('startRedisCluster', () => {
  let cluster: PrivateRedisCluster

  beforeAll(async () => {
    cluster = await startRedisCluster()
  })
  afterAll(async () => {
    await cluster?.stop()
  })

  it('joins 3 primaries with a replica each, every slot served', async () => {
    expect(cluster.nodes).toHaveLength(6)
    expect(cluster.seeds.split(',')).toHaveLength(6)
    const primaries = await cluster.primaries()
    expect(primaries).toHaveLength(3)
    const first = new Redis(primaries[0]?.port as number, '127.0.0.1')
    try {
      const info = String(await first.call('CLUSTER', 'INFO'))
      expect(info).toContain('cluster_state:ok')
      expect(info).toContain('cluster_slots_assigned:16384')
      expect(info).toContain('cluster_known_nodes:6')
      const replicas = String(await first.call('CLUSTER', 'NODES'))
        .split('\n')
        .filter((l) => l.includes('slave'))
      expect(replicas).toHaveLength(3)
    } finally {
      first.disconnect()
    }
  })

  it('spreads keys over the primaries: a cluster client reads back what it wrote', async () => {
    const client = new Cluster(cluster.target.redisClusterNodes)
    try {
      const keys = Array.from({ length: 60 }, (_, i) => `harness-test:${i}`)
      for (const k of keys) await client.set(k, k)
      for (const k of keys) expect(await client.get(k)).toBe(k)
      const counts = await Promise.all(client.nodes('master').map((n) => n.dbsize()))
      // 60 keys over 3 primaries: each holds some
      expect(counts.filter((c) => c > 0)).toHaveLength(3)
      expect(counts.reduce((a, b) => a + b, 0)).toBe(60)
    } finally {
      client.disconnect()
    }
  })

  it('stop kills every node', async () => {
    const other = await startRedisCluster({ primaries: 3, replicas: 0 })
    await other.stop()
    expect(other.nodes.every((n) => n.server.hasExited())).toBe(true)
  })
})
