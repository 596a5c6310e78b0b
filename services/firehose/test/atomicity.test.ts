import { createSchema } from '@circles/redis-schema'
import { type PrivateRedis, settle, startRedisServer } from '@circles/testkit'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readEnv, toConfig } from '../src/config.js'
import { PublishError, publishBatch } from '../src/publisher.js'
import { createFirehoseService, FirehoseError } from '../src/service.js'
import { didOf, syntheticCorpus } from './frames.js'
import {
  expectedEvents,
  served,
  storedCursor,
  streamEvents,
  testConfig,
  testRedis,
  waitFor,
} from './helpers.js'
import { startRelayServer } from './relay-server.js'

// Redis refuses writes when it is out of memory (maxmemory + noeviction): commands queued in a MULTI are
// refused at queue time and EXEC aborts the whole transaction. That is the real-world failure used here,
// on a private redis-server (maxmemory is set below what it already uses, then back to unlimited).

let r: PrivateRedis & { client: Redis }

beforeAll(async () => {
  const server = await startRedisServer(['--maxmemory-policy', 'noeviction'])
  const client = new Redis(server.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50,
  })
  client.on('error', () => {})
  await client.connect()
  r = { ...server, client }
})
afterAll(async () => {
  r?.client.disconnect()
  await r?.stop()
})

/** Sets maxmemory below what Redis already uses: from now on every write is refused (noeviction). */
async function fillMemory(client: Redis): Promise<void> {
  await client.config('SET', 'maxmemory', '1')
}

async function freeMemory(client: Redis): Promise<void> {
  await client.config('SET', 'maxmemory', '0')
}

describe('cursor atomicity', () => {
  it('a MULTI that fails leaves neither entries nor cursor', async () => {
    const schema = createSchema('atomic:')
    const ok = { events: [], seq: 1, frames: 1, time: 0 }
    const batch = {
      events: [
        {
          type: 'create' as const,
          kind: 'like' as const,
          author: didOf(1),
          subject: didOf(2),
          rkey: '3l2aaaaaaaa22',
          time: 1,
          chars: 0,
        },
      ],
      seq: 2,
      frames: 1,
      time: 0,
    }
    await publishBatch(r.client, schema.shard(0), ok, { eventsPerEntry: 10, maxLen: 1000 })
    expect(await r.client.get(schema.firehoseCursor)).toBe('1')
    await fillMemory(r.client)
    await expect(
      publishBatch(r.client, schema.shard(0), batch, { eventsPerEntry: 10, maxLen: 1000 }),
    ).rejects.toBeInstanceOf(PublishError)
    await freeMemory(r.client)
    expect(await r.client.xlen(schema.eventStream)).toBe(0)
    expect(await r.client.get(schema.firehoseCursor)).toBe('1')
    await r.client.del(schema.eventStream, schema.firehoseCursor)
  })

  it('the service survives refused writes and ends with every event exactly once', async () => {
    const frames = served(syntheticCorpus(1200, 11))
    const last = frames.at(-1)?.seq as number
    const server = await startRelayServer(frames, { rate: 3000 })
    const prefix = 'oom:'
    const schema = createSchema(prefix)
    const redis = new Redis(r.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
    })
    await redis.connect()
    const config = toConfig(
      readEnv({
        RELAY_URL: server.url,
        REDIS_URL: r.url,
        REDIS_PREFIX: prefix,
        FIREHOSE_CURSOR: '0',
        FIREHOSE_BATCH_FRAMES: '50',
        FIREHOSE_FLUSH_MS: '10',
        FIREHOSE_BACKOFF_MIN_MS: '20',
        FIREHOSE_BACKOFF_MAX_MS: '100',
        FIREHOSE_LAG_CHECK_MS: '50',
      }),
    )
    const service = createFirehoseService(config, { redis })
    try {
      await service.start()
      await waitFor('some progress', async () => ((await storedCursor(redis, schema)) ?? 0) > 100)
      await fillMemory(r.client)
      const frozen = await storedCursor(redis, schema)
      // Nothing moves while Redis refuses writes (at most the MULTI in flight when memory ran out lands).
      const during = await settle('the cursor', () => storedCursor(redis, schema), { quietMs: 400 })
      expect(during).not.toBeNull()
      expect(during as number).toBeGreaterThanOrEqual(frozen as number)
      expect(during as number).toBeLessThan(last)
      await freeMemory(r.client)
      await waitFor('the last cursor', async () => (await storedCursor(redis, schema)) === last)
      expect(await streamEvents(redis, schema)).toEqual(expectedEvents(frames, Date.now()))
      expect(server.connections.length).toBeGreaterThan(1)
    } finally {
      await service.close()
      await freeMemory(r.client)
      await r.client.del(schema.eventStream, schema.firehoseCursor, schema.firehoseMetrics)
      redis.disconnect()
      await server.close()
    }
  })
})

describe('start-up checks', () => {
  it('refuses to start when a key of the firehose holds the wrong type', async () => {
    const t = await testRedis()
    try {
      await t.redis.set(t.schema.eventStream, 'not a stream')
      const service = createFirehoseService(testConfig('ws://127.0.0.1:9', t.prefix), {
        redis: t.redis,
      })
      await expect(service.start()).rejects.toBeInstanceOf(FirehoseError)
      await service.close()
    } finally {
      await t.cleanup()
    }
  })
})
