import { decodeEvents, eventDid, type StreamEvent, shardOf } from '@circles/core'
import { type RedisSchema, shardsOf } from '@circles/redis-schema'
import { createTestRedis, TEST_REDIS_URL, type TestRedis } from '@circles/testkit'
import type { Redis } from 'ioredis'
import { type FirehoseConfig, readEnv, toConfig } from '../src/config.js'
import { decodeFrame } from '../src/fast-decoder.js'
import type { ServedFrame } from './relay-server.js'

export type { TestRedis }

export const REDIS_URL = TEST_REDIS_URL

/**
 * The shared Redis under a private prefix, its client configured as the service configures its own (no
 * offline queue: a write while disconnected fails at once), since tests inject it.
 */
export function testRedis(): Promise<TestRedis> {
  return createTestRedis('test:fh', { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
}

/** A config for tests: fast timers, small batches (several flushes per test), the given relay. */
export function testConfig(
  relayUrl: string,
  prefix: string,
  env: Record<string, string> = {},
): FirehoseConfig {
  return toConfig(
    readEnv({
      RELAY_URL: relayUrl,
      REDIS_URL,
      REDIS_PREFIX: prefix,
      FIREHOSE_BATCH_FRAMES: '100',
      FIREHOSE_FLUSH_MS: '10',
      FIREHOSE_EVENTS_PER_ENTRY: '50',
      FIREHOSE_LAG_CHECK_MS: '50',
      FIREHOSE_STALL_MS: '2000',
      FIREHOSE_BACKOFF_MIN_MS: '20',
      FIREHOSE_BACKOFF_MAX_MS: '200',
      FIREHOSE_METRICS_MS: '200',
      FIREHOSE_MAX_LAG: '100000',
      FIREHOSE_RESUME_LAG: '1000',
      FIREHOSE_MAXLEN: '1000000',
      ...env,
    }),
  )
}

export function served(frames: Uint8Array[], firstSeq = 1): ServedFrame[] {
  return frames.map((bytes, i) => ({ seq: firstSeq + i, bytes }))
}

/** Events the frames stand for, in order: what the stream must hold, exactly once. */
export function expectedEvents(frames: ServedFrame[], now: number): StreamEvent[] {
  return frames.flatMap((f) => decodeFrame(f.bytes, now).events)
}

export async function streamEvents(
  redis: Redis,
  schema: RedisSchema,
  stream = schema.eventStream,
): Promise<StreamEvent[]> {
  const entries = await redis.xrange(stream, '-', '+')
  return entries.flatMap(([, fields]) => decodeEvents(fields[1] ?? ''))
}

export async function storedCursor(redis: Redis, schema: RedisSchema): Promise<number | null> {
  const v = await redis.get(schema.firehoseCursor)
  return v === null ? null : Number(v)
}

/** The lowest cursor of `shards` stream shards (where a restart reads the relay from); null if one has none. */
export async function lowestCursor(
  redis: Redis,
  schema: RedisSchema,
  shards: number,
): Promise<number | null> {
  const values = await Promise.all(shardsOf(schema, shards).map((s) => redis.get(s.cursor)))
  return values.includes(null) ? null : Math.min(...values.map(Number))
}

/** Each shard's events, in stream order. */
export function shardEvents(
  redis: Redis,
  schema: RedisSchema,
  shards: number,
): Promise<StreamEvent[][]> {
  return Promise.all(shardsOf(schema, shards).map((s) => streamEvents(redis, schema, s.stream)))
}

/** `events` split by stream shard, each in order: what each shard's stream must hold. */
export function byShard(events: StreamEvent[], shards: number): StreamEvent[][] {
  const out: StreamEvent[][] = Array.from({ length: shards }, () => [])
  for (const e of events) out[shardOf(eventDid(e), shards)]?.push(e)
  return out
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
