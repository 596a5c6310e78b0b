import { DAY_MS, HOUR_MS } from '@circles/core'
import { createIndexReader, createIndexWriter } from '@circles/interaction-index'
import { readLongTerm } from '@circles/long-term'
import { createSchema, type RedisSchema } from '@circles/redis-schema'
import { connectRedis } from '@circles/redis-wire'
import {
  createTestRedis,
  haveRedisCli,
  type PrivateRedisCluster,
  startRedisCluster,
} from '@circles/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { backfillRepo } from '../src/repo.js'
import { like, quote, reply, repost } from './records.js'

// The fold on a Redis Cluster (through backfillRepo, as the worker runs it): its own frames (partner checks, DID table entries, one script call per
// partner, whose script is loaded on every primary) reach each key's node, and the index and day blobs it
// leaves read the same as on one Redis.

const A = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
// did:plc identifiers are base32 (a-z, 2-7): two letters of it make 40 distinct partners.
const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
const PARTNERS = Array.from(
  { length: 40 },
  (_, i) => `did:plc:${'p'.repeat(22)}${B32[i >> 5]}${B32[i & 31]}`,
)
const now = Date.now()
const days = (n: number) => Math.floor((now - n * DAY_MS) / DAY_MS)

// Partners spread over many slots: recent (the live index) and older (the day blobs) records of each kind.
const history = PARTNERS.flatMap((p, i) => [
  like(p, now - (1 + (i % 40)) * HOUR_MS),
  repost(p, now - (3 + (i % 60)) * DAY_MS),
  reply(p, now - (5 + (i % 30)) * DAY_MS),
  quote(p, now - (2 + (i % 20)) * HOUR_MS),
])

async function foldAndRead(redis: Redis, schema: RedisSchema) {
  const writer = createIndexWriter(redis, schema)
  try {
    // Through backfillRepo: its state and the totals live in two slots.
    const open = async () => ({ rev: 'rev1', bytes: 1234, records: history })
    await backfillRepo({ redis, schema, writer, open, now: () => now }, A)
  } finally {
    await writer.close()
  }
  const read = (did: string, side: 'bs' | 'br') =>
    readLongTerm(redis, schema, schema.longTerm(did, side), days(90), days(0))
  const live = await createIndexReader(redis, schema).summary(A, 48)
  return {
    state: await redis.hgetall(schema.backfillRepo(A)),
    stats: await redis.hgetall(schema.backfillStats),
    sent: await read(A, 'bs'),
    received: await Promise.all(PARTNERS.map((p) => read(p, 'br'))),
    live,
  }
}

describe.runIf(haveRedisCli('the backfill cluster test'))('backfillRepo on a Redis Cluster', () => {
  let cluster: PrivateRedisCluster
  beforeAll(async () => {
    cluster = await startRedisCluster()
  })
  afterAll(async () => {
    await cluster?.stop()
  })

  it('leaves the same state, totals, index and day blobs as on one Redis', async () => {
    const single = await createTestRedis('backfill-cluster')
    const redis = connectRedis(cluster.target, { maxRetriesPerRequest: 2 })
    try {
      const expected = await foldAndRead(single.redis, single.schema)
      expect(expected.sent.size).toBe(PARTNERS.length)
      const got = await foldAndRead(redis, createSchema(single.prefix))
      expect(got).toEqual(expected)
    } finally {
      redis.disconnect()
      await single.cleanup()
    }
  })
})
