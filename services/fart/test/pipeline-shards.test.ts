import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { readPipelineState } from '../src/metrics.js'

let t: TestRedis
beforeEach(async () => {
  t = await createTestRedis('fart-pipeline-shards')
})
afterEach(async () => {
  await t.cleanup()
})

describe('readPipelineState with stream shards', () => {
  it('sums lengths, lag and dead letters over the shards; the cursor is the lowest', async () => {
    const { redis, schema } = t
    const [s0, s1] = [schema.shard(0), schema.shard(1)]
    for (const s of [s0, s1]) {
      await redis.xgroup('CREATE', s.stream, schema.indexerGroup, '0', 'MKSTREAM')
      await redis.xadd(s.stream, '*', 'e', 'x')
      await redis.xadd(s.deadLetters, '*', 'e', 'x')
    }
    await redis.set(s0.cursor, '900')
    await redis.set(s1.cursor, '850')
    const one = await readPipelineState(redis, schema)
    expect(one).toMatchObject({ stream_length: 1, indexer_lag_entries: 1, firehose_cursor: 900 })
    const both = await readPipelineState(redis, schema, Date.now(), 2)
    expect(both).toMatchObject({
      stream_length: 2,
      indexer_lag_entries: 2,
      indexer_pending: 0,
      dead_letters: 2,
      firehose_cursor: 850,
    })
  })
})
