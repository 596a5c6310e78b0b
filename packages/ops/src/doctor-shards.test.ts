import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { runDoctor } from './doctor.js'
import { checkRetiredShards } from './doctor-shards.js'

let tr: TestRedis
beforeEach(async () => {
  tr = await createTestRedis('doctor-shards')
})
afterEach(async () => {
  await tr.cleanup()
})

describe('the doctor with stream shards', () => {
  it('warns about a shard at or above FIREHOSE_SHARDS that holds entries no group applied', async () => {
    const { redis, schema } = tr
    expect((await checkRetiredShards(redis, schema, 2)).status).toBe('ok')
    const retired = schema.shard(2).stream
    await redis.xgroup('CREATE', retired, schema.indexerGroup, '0', 'MKSTREAM')
    // drained: an empty stream with its group is no warning
    expect((await checkRetiredShards(redis, schema, 2)).status).toBe('ok')
    await redis.xadd(retired, '*', 'e', 'x')
    const check = await checkRetiredShards(redis, schema, 2)
    expect(check.status).toBe('warn')
    expect(check.message).toContain(`${retired} (1 not applied)`)
    // with the old setting, the shard is a live one again
    expect((await checkRetiredShards(redis, schema, 3)).status).toBe('ok')
  })

  it("checks every shard's stream and dead letters, naming the shard", async () => {
    const { redis, schema } = tr
    for (const k of [0, 1]) await redis.xadd(schema.shard(k).stream, '*', 'e', 'x')
    await redis.xadd(schema.shard(1).deadLetters, '*', 'e', 'x', 'error', 'bad', 'at', '1')
    const { checks } = await runDoctor({ redis, schema, streamShards: 2 })
    const names = checks.map((c) => c.name)
    expect(names).toContain('event stream [shard 0]')
    expect(names).toContain('event stream [shard 1]')
    const dead = checks.filter((c) => c.name.startsWith('dead letters'))
    expect(dead.map((c) => [c.name, c.status])).toEqual([
      ['dead letters [shard 0]', 'ok'],
      ['dead letters [shard 1]', 'warn'],
    ])
  })
})
