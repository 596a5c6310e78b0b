import { createSchema } from '@circles/redis-schema'
import { type PrivateRedis, startRedisServer } from '@circles/testkit'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_THRESHOLDS } from './doctor.js'
import { checkMemory, estimateMemory } from './doctor-memory.js'

describe('estimateMemory', () => {
  it('is the 48-hour window at 86 B an interaction plus the days of aggregates kept', () => {
    // 1,000 interactions/s: 172.8 M in 48 h at 86 B; 86.4 M a day, 0.63 rows each at 31.3 B, 90 days.
    const e = estimateMemory(1000, 90)
    expect(e.windowBytes).toBe(172_800_000 * 86)
    expect(e.aggregateBytes).toBeCloseTo(86_400_000 * 0.63 * 31.3 * 90, 0)
    expect(e.totalBytes).toBe(e.windowBytes + e.aggregateBytes)
    // Linear in the rate and in the days kept; nothing for nothing.
    expect(estimateMemory(500, 90).totalBytes).toBeCloseTo(e.totalBytes / 2, 0)
    expect(estimateMemory(1000, 45).aggregateBytes).toBeCloseTo(e.aggregateBytes / 2, 0)
    expect(estimateMemory(0, 90).totalBytes).toBe(0)
    expect(estimateMemory(-5, 90).totalBytes).toBe(0)
  })
})

// A private redis-server: the test sets its maxmemory.
describe('the doctor’s memory line', () => {
  let server: PrivateRedis
  let redis: Redis
  const schema = createSchema('doctormem:')
  const t = DEFAULT_THRESHOLDS

  beforeAll(async () => {
    server = await startRedisServer()
    redis = new Redis(server.url)
  })
  afterAll(async () => {
    await redis?.del(schema.firehoseMetrics)
    redis?.disconnect()
    await server?.stop()
  })

  const firehose = (fields: Record<string, string | number>) =>
    redis
      .multi()
      .del(schema.firehoseMetrics)
      .hset(schema.firehoseMetrics, { updatedAt: Date.now(), ...fields })
      .exec()

  it('warns when maxmemory is below what the live rate needs, and says by how much', async () => {
    await redis.config('SET', 'maxmemory', String(1 << 30))
    await firehose({ state: 'reading', interactionsPerSecond: 1000, lagMs: 800 })
    const check = await checkMemory(redis, schema, t)
    expect(check.status).toBe('warn')
    expect(check.message).toMatch(/^maxmemory is 1\.07 GB, below what 1000 interactions\/s needs/)
    expect(check.message).toContain('48 h window 14.9 GB')
    expect(check.message).toContain('ROLLUP_RETENTION_DAYS')
  })

  it('is content when maxmemory covers it', async () => {
    await redis.config('SET', 'maxmemory', String(1 << 30))
    await firehose({ state: 'reading', interactionsPerSecond: 1, lagMs: 800 })
    // 1/s: 14.9 MB of window and 153 MB of aggregates over 90 days, within 1 GiB.
    const check = await checkMemory(redis, schema, t)
    expect(check).toMatchObject({ name: 'redis memory', status: 'ok' })
    expect(check.message).toMatch(/1 interactions\/s needs ~0\.17 GB/)
    // The same rate with ten years of aggregates kept does not fit.
    expect((await checkMemory(redis, schema, { ...t, rollupRetentionDays: 3650 })).status).toBe(
      'warn',
    )
  })

  it('does not size from a rate that is not the network’s', async () => {
    await redis.config('SET', 'maxmemory', String(100 << 20))
    // Catching up: far behind the relay, the rate is the replay's, not the network's.
    await firehose({ state: 'reading', interactionsPerSecond: 50_000, lagMs: 3_600_000 })
    expect(await checkMemory(redis, schema, t)).toMatchObject({ status: 'ok' })
    await firehose({ state: 'backoff', interactionsPerSecond: 0, lagMs: '' })
    const check = await checkMemory(redis, schema, t)
    expect(check).toMatchObject({ status: 'ok' })
    expect(check.message).toMatch(/no live interaction rate/)
    await redis.config('SET', 'maxmemory', '0')
  })
})
