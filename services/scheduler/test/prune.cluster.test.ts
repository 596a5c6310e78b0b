import { DAY_MS } from '@circles/core'
import { DID_TABLE_BUCKETS, didId, didTableBucket, rememberDids } from '@circles/interaction-index'
import { encodeDayBlob } from '@circles/long-term'
import { createSchema } from '@circles/redis-schema'
import { connectRedis, primaries } from '@circles/redis-wire'
import { haveRedisCli, type PrivateRedisCluster, prng, startRedisCluster } from '@circles/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createFence } from '../src/fence.js'
import { runPrune } from '../src/prune.js'

// The prune's SCAN on a Redis Cluster: a SCAN sees one node's keys, so the prune walks every primary;
// each page's commands go in a pipeline on the node that holds its keys (no cross-node pipeline). The DID
// table sweep claims its fence in every slot and checks and reclaims accounts in a pipeline per node.

describe.runIf(haveRedisCli('the prune cluster test'))('prune on a Redis Cluster', () => {
  let cluster: PrivateRedisCluster
  let redis: Redis
  beforeAll(async () => {
    cluster = await startRedisCluster({ replicas: 0 })
    redis = connectRedis(cluster.target)
  })
  afterAll(async () => {
    redis?.disconnect()
    await cluster?.stop()
  })

  it('prunes old day fields of the keys on every primary', async () => {
    const schema = createSchema(`prune-cluster-${process.pid}:`)
    const rand = prng(3)
    const did = () =>
      `did:plc:${Array.from({ length: 24 }, () => 'abcdefgh'[Math.floor(rand() * 8)]).join('')}`
    const now = Date.now()
    const today = Math.floor(now / DAY_MS)
    const dids = Array.from({ length: 60 }, did)
    for (const d of dids) {
      await redis.hset(
        schema.longTerm(d, 's'),
        String(today - 200),
        'old',
        String(today - 1),
        'new',
      )
      await redis.hset(schema.snapshot(d), String(today - 400), 'old', String(today), 'new')
    }
    const holding = await Promise.all(primaries(redis).map((n) => n.dbsize()))
    expect(holding.filter((n) => n > 0)).toHaveLength(3)
    const result = await runPrune(redis, schema, {
      now,
      retentionDays: 90,
      snapshotRetentionDays: 365,
    })
    expect(result).toMatchObject({
      longTermKeys: 60,
      longTermFields: 60,
      snapshotKeys: 60,
      snapshotFields: 60,
    })
    for (const d of dids) {
      expect(await redis.hkeys(schema.longTerm(d, 's'))).toEqual([String(today - 1)])
      expect(await redis.hkeys(schema.snapshot(d))).toEqual([String(today)])
    }
  })

  it('sweeps the DID table: reclaims the entries of accounts without data on every primary', async () => {
    const schema = createSchema(`sweep-cluster-${process.pid}:`)
    const rand = prng(5)
    const did = () =>
      `did:plc:${Array.from({ length: 24 }, () => 'abcdefgh'[Math.floor(rand() * 8)]).join('')}`
    const now = Date.now()
    const today = Math.floor(now / DAY_MS)
    const quiet = Array.from({ length: 40 }, did)
    const active = Array.from({ length: 40 }, did)
    await rememberDids(redis, schema, [...quiet, ...active])
    for (const d of active) {
      await redis.hset(schema.longTerm(d, 's'), String(today - 1), encodeDayBlob(24, []))
    }
    const fence = createFence(
      redis,
      schema.pruneFence,
      await redis.incr(schema.schedulerFenceCounter('prune')),
    )
    const result = await runPrune(redis, schema, {
      now,
      retentionDays: 90,
      snapshotRetentionDays: 365,
      tableSweep: { fence, buckets: DID_TABLE_BUCKETS, batch: 25 },
    })
    expect(result.didTable).toMatchObject({
      entries: 80,
      candidates: 40,
      reclaimed: 40,
      kept: 0,
      stopped: null,
    })
    const entry = (d: string) =>
      redis.hgetBuffer(schema.didTable(didTableBucket(didId(d))), didId(d))
    for (const d of quiet) expect(await entry(d)).toBe(null)
    for (const d of active) expect((await entry(d))?.length).toBeGreaterThan(0)
  })
})
