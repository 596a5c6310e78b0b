import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { readPipelineStats } from '../src/stats.js'

let t: TestRedis
beforeEach(async () => {
  t = await createTestRedis('sched-stats-shards')
})
afterEach(async () => {
  await t.cleanup()
})

describe('pipeline stats with stream shards', () => {
  it('sums every shard and reports the lag of the one furthest behind', async () => {
    const { redis, schema } = t
    const now = Date.now()
    const [s0, s1] = [schema.shard(0), schema.shard(1)]
    for (const s of [s0, s1]) {
      await redis.xgroup('CREATE', s.stream, schema.indexerGroup, '0', 'MKSTREAM')
    }
    // shard 0: two entries, both read; shard 1: three, none read, the oldest 5 s old
    await redis.xadd(s0.stream, `${now - 1000}-0`, 'e', 'x')
    await redis.xadd(s0.stream, `${now - 900}-0`, 'e', 'x')
    await redis.xreadgroup('GROUP', schema.indexerGroup, 'c', 'STREAMS', s0.stream, '>')
    await redis.xack(s0.stream, schema.indexerGroup, `${now - 1000}-0`)
    for (const ms of [5000, 4000, 3000]) await redis.xadd(s1.stream, `${now - ms}-0`, 'e', 'x')

    const one = await readPipelineStats(redis, schema, now, null)
    expect(one.stream).toEqual({ length: 2, undelivered: 0, pending: 1, lagMs: 0 })
    const both = await readPipelineStats(redis, schema, now, null, 2)
    expect(both.stream).toEqual({ length: 5, undelivered: 3, pending: 1, lagMs: 5000 })
  })
})
