import { createLogger } from '@circles/logging'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { registerRateLimit } from '../src/rate-limit.js'

const log = createLogger('test:rate-limit')

async function limitedApp(redis: Redis, prefix: string, max: number): Promise<FastifyInstance> {
  const app = Fastify()
  registerRateLimit(app, { redis, prefix, max, windowMs: 60_000, syncMs: 20, log })
  app.get('/x', async () => ({ ok: true }))
  app.get('/free', { config: { rateLimit: false } }, async () => ({ ok: true }))
  await app.ready()
  return app
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('rate limiter (Redis-backed, counted locally between syncs)', () => {
  let t: TestRedis
  const apps: FastifyInstance[] = []
  beforeEach(async () => {
    t = await createTestRedis('fart-rl')
  })
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close()
    await t.cleanup()
  })

  it('admits max requests per client in one process, then 429 with Retry-After; exempt routes pass', async () => {
    const app = await limitedApp(t.redis, t.schema.rateLimitPrefix, 5)
    apps.push(app)
    const remaining: string[] = []
    for (let i = 0; i < 5; i++) {
      const r = await app.inject({ url: '/x', remoteAddress: '10.0.0.1' })
      expect(r.statusCode).toBe(200)
      remaining.push(String(r.headers['x-ratelimit-remaining']))
    }
    expect(remaining).toEqual(['4', '3', '2', '1', '0'])
    const over = await app.inject({ url: '/x', remoteAddress: '10.0.0.1' })
    expect(over.statusCode).toBe(429)
    expect(over.json().message).toContain('rate limit')
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0)
    // Another client has its own count; an exempt route is not counted.
    expect((await app.inject({ url: '/x', remoteAddress: '10.0.0.2' })).statusCode).toBe(200)
    expect((await app.inject({ url: '/free', remoteAddress: '10.0.0.1' })).statusCode).toBe(200)
    // The counts reach Redis, under the schema's prefix.
    await until('the count in Redis', async () => {
      const [key] = await t.redis.keys(`${t.schema.rateLimitPrefix}10.0.0.1:*`)
      return key !== undefined && (await t.redis.get(key)) === '5'
    })
  })

  it('shares the count across processes through Redis', async () => {
    const a = await limitedApp(t.redis, t.schema.rateLimitPrefix, 10)
    const b = await limitedApp(t.redis, t.schema.rateLimitPrefix, 10)
    apps.push(a, b)
    for (let i = 0; i < 6; i++) {
      expect((await a.inject({ url: '/x', remoteAddress: '10.0.0.9' })).statusCode).toBe(200)
    }
    await until('process a to hand its count to Redis', async () => {
      const keys = await t.redis.keys(`${t.schema.rateLimitPrefix}10.0.0.9:*`)
      return keys.length === 1 && (await t.redis.get(keys[0]!)) === '6'
    })
    // Process b learns a's 6 on its first request: 4 left between them.
    const codes: number[] = []
    for (let i = 0; i < 6; i++) {
      codes.push((await b.inject({ url: '/x', remoteAddress: '10.0.0.9' })).statusCode)
    }
    expect(codes).toEqual([200, 200, 200, 200, 429, 429])
    // And a learns b's share at its next sync.
    await until('process a to see the total', async () => {
      return (await a.inject({ url: '/x', remoteAddress: '10.0.0.9' })).statusCode === 429
    })
  })

  it('keeps limiting on its own counts while Redis is unreachable, and answers', async () => {
    const dead = new Redis('redis://127.0.0.1:9', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    })
    dead.on('error', () => {}) // refused: expected
    const app = await limitedApp(dead, t.schema.rateLimitPrefix, 2)
    apps.push(app)
    const codes: number[] = []
    for (let i = 0; i < 3; i++) {
      codes.push((await app.inject({ url: '/x', remoteAddress: '10.0.0.3' })).statusCode)
    }
    expect(codes).toEqual([200, 200, 429])
    dead.disconnect()
  })
})
