import { HOUR_MS } from '@circles/core'
import { createIndexReader, createIndexWriter, INDEX_LIBRARY } from '@circles/interaction-index'
import { createSchema } from '@circles/redis-schema'
import { clockAnchor, type PrivateRedis, startRedisServer } from '@circles/testkit'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { create, plc } from './helpers.js'

// A private server: FUNCTION FLUSH on the shared one would break the other test files' writers.
let server: PrivateRedis
let redis: Redis

beforeAll(async () => {
  server = await startRedisServer()
  redis = new Redis(server.url, { maxRetriesPerRequest: 2 })
})

afterAll(async () => {
  redis.disconnect()
  await server.stop()
})

it('loads the index library, and loads it again after Redis lost it', async () => {
  const T0 = clockAnchor()
  const clock = T0 + 60_000
  const schema = createSchema('fn:')
  const writer = createIndexWriter(redis, schema, { now: () => clock })
  const reader = createIndexReader(redis, schema, { now: () => clock })
  const [alice, bob] = [plc('alice'), plc('bob')]
  const likes = (from: number) =>
    Array.from({ length: 3 }, (_, i) => create(alice, bob, 'like', T0 - HOUR_MS + from + i))

  expect((await writer.apply(likes(0))).added).toBe(3)
  const libraries = (await redis.call('FUNCTION', 'LIST')) as unknown[][]
  expect(libraries.map((l) => l[1])).toContain(INDEX_LIBRARY)

  // as after a restart without persistence: the batch in hand fails (the service applies it again)
  await redis.call('FUNCTION', 'FLUSH')
  await expect(writer.apply(likes(10))).rejects.toThrow(/function not found/i)
  expect((await writer.apply(likes(10))).added).toBe(3)
  const [partner] = await reader.topPartners({
    did: alice,
    direction: 'sent',
    windowHours: 48,
    weights: { like: 1, repost: 1, reply: 1, quote: 1 },
    limit: 10,
  })
  expect(partner?.sent.like).toBe(6)
})
