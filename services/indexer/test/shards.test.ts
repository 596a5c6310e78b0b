import { encodeEvents, eventDid, type StreamEvent, shardOf } from '@circles/core'
import {
  createIndexReader,
  createIndexWriter,
  type IndexReader,
  type KindCounts,
} from '@circles/interaction-index'
import { createSchema, type RedisSchema, shardsOf } from '@circles/redis-schema'
import { type PrivateRedis, startRedisServer } from '@circles/testkit'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toConfig } from '../src/config.js'
import { createIndexerService } from '../src/service.js'
import { mixedEvents, waitDrained } from './helpers.js'

// FIREHOSE_SHARDS=2 on one Redis: each indexer process reads both shard streams (a group per stream),
// two processes share them, and the index equals one ordered apply of all the events.

const ALL: KindCounts = { like: 1, repost: 1, reply: 1, quote: 1 }
let server: PrivateRedis
let redis: Redis

beforeAll(async () => {
  server = await startRedisServer()
  redis = new Redis(server.url)
})

afterAll(async () => {
  redis?.disconnect()
  await server?.stop()
})

/** Publishes each event to the stream of its shard, as the firehose does; returns the entries per shard. */
async function publish(schema: RedisSchema, events: StreamEvent[], shards: number) {
  const parts: StreamEvent[][] = Array.from({ length: shards }, () => [])
  for (const e of events) parts[shardOf(eventDid(e), shards)]?.push(e)
  const counts: number[] = []
  for (const [k, part] of parts.entries()) {
    let n = 0
    for (let i = 0; i < part.length; i += 40) {
      await redis.xadd(schema.shard(k).stream, '*', 'e', encodeEvents(part.slice(i, i + 40)))
      n++
    }
    counts.push(n)
  }
  return counts
}

async function view(reader: IndexReader, dids: string[]) {
  const out: Record<string, unknown> = {}
  for (const did of dids) {
    out[did] = await reader.topPartners({
      did,
      direction: 'both',
      windowHours: 48,
      weights: ALL,
      limit: 100,
    })
  }
  return out
}

describe('indexers over two stream shards', () => {
  it('two processes read both shards and index exactly like one ordered apply', async () => {
    const events = mixedEvents(3000, Date.now(), 9, false)
    const a = createSchema('sharded:')
    const counts = await publish(a, events, 2)
    expect(counts.every((n) => n > 5)).toBe(true)
    const config = (consumer: string) =>
      toConfig({
        REDIS_URL: server.url,
        REDIS_PREFIX: 'sharded:',
        FIREHOSE_SHARDS: '2',
        INDEXER_CONSUMER: consumer,
        INDEXER_BATCH_ENTRIES: '3',
        INDEXER_METRICS_MS: '100',
      })
    const s1 = createIndexerService(config('one'))
    const s2 = createIndexerService(config('two'))
    await Promise.all([s1.start(), s2.start()])
    for (const shard of shardsOf(a, 2)) await waitDrained(redis, shard.stream, a.indexerGroup)
    await Promise.all([s1.close(), s2.close()])
    const entries = s1.counters().entries + s2.counters().entries
    expect(entries).toBe(counts.reduce((x, y) => x + y, 0))
    expect(Number((await redis.hgetall(a.indexerMetrics)).entries)).toBe(entries)

    const b = createSchema('ordered:')
    await createIndexWriter(redis, b).apply(events)
    const dids = [...new Set(events.map(eventDid))]
    expect(await view(createIndexReader(redis, a), dids)).toEqual(
      await view(createIndexReader(redis, b), dids),
    )
  })
})
