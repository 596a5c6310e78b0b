import { createLogger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { toConfig } from '../src/config.js'
import { registerRateLimit } from '../src/rate-limit.js'
import { type Harness, startHarness } from './helpers.js'

const log = createLogger('test:rate-limit')

async function limitedApp(
  redis: Redis,
  schema: RedisSchema,
  max: number,
): Promise<FastifyInstance> {
  const app = Fastify()
  registerRateLimit(app, { redis, key: schema.rateLimit, max, windowMs: 60_000, syncMs: 20, log })
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
    const app = await limitedApp(t.redis, t.schema, 5)
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
    const a = await limitedApp(t.redis, t.schema, 10)
    const b = await limitedApp(t.redis, t.schema, 10)
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
    const app = await limitedApp(dead, t.schema, 2)
    apps.push(app)
    const codes: number[] = []
    for (let i = 0; i < 3; i++) {
      codes.push((await app.inject({ url: '/x', remoteAddress: '10.0.0.3' })).statusCode)
    }
    expect(codes).toEqual([200, 200, 429])
    dead.disconnect()
  })
})

describe('rate limiter: client addresses', () => {
  let t: TestRedis
  const apps: FastifyInstance[] = []
  beforeEach(async () => {
    t = await createTestRedis('fart-rl')
  })
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close()
    await t.cleanup()
  })

  const remaining = (r: { headers: Record<string, unknown> }) =>
    Number(r.headers['x-ratelimit-remaining'])

  it('counts an IPv6 client by its /64, an IPv4-mapped address as the IPv4; keys of one window TTL', async () => {
    const app = await limitedApp(t.redis, t.schema, 10)
    apps.push(app)
    // Nine addresses of one /64 (its holder may use any of them): one count.
    for (let i = 1; i <= 9; i++) {
      const ip = `2001:db8:1:2:${(i * 7919).toString(16).slice(-4)}::${i.toString(16)}`
      expect(remaining(await app.inject({ url: '/x', remoteAddress: ip }))).toBe(10 - i)
    }
    expect((await app.inject({ url: '/x', remoteAddress: '2001:db8:1:2::1' })).statusCode).toBe(200)
    expect((await app.inject({ url: '/x', remoteAddress: '2001:db8:1:2::2' })).statusCode).toBe(429)
    // The next /64 is someone else.
    expect(remaining(await app.inject({ url: '/x', remoteAddress: '2001:db8:1:3::1' }))).toBe(9)
    expect(remaining(await app.inject({ url: '/x', remoteAddress: '::ffff:10.0.0.5' }))).toBe(9)
    expect(remaining(await app.inject({ url: '/x', remoteAddress: '10.0.0.5' }))).toBe(8)
    await until('the counts in Redis', async () => {
      const keys = (await t.redis.keys(`${t.schema.rateLimitPrefix}*`)).sort()
      return keys.length === 3
    })
    const keys = (await t.redis.keys(`${t.schema.rateLimitPrefix}*`)).sort()
    const names = keys.map((k) => k.slice(t.schema.rateLimitPrefix.length).replace(/:\d+$/, ''))
    expect(names).toEqual(['10.0.0.5', '2001:0db8:0001:0002::/64', '2001:0db8:0001:0003::/64'])
    for (const k of keys) {
      const ttl = await t.redis.pttl(k)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(60_000)
    }
  })
})

describe('rate limiter behind a proxy (TRUST_PROXY), through the app', () => {
  let h: Harness | undefined
  afterEach(async () => {
    await h?.close()
    h = undefined
  })
  const live = (remoteAddress: string, xff?: string) =>
    h!.app.inject({
      url: '/v1/stats/live',
      remoteAddress,
      headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
    })
  const remaining = (r: { headers: Record<string, unknown> }) =>
    Number(r.headers['x-ratelimit-remaining'])

  it('TRUST_PROXY=true: the client is the entry the proxy appended; what the client wrote gives no fresh budget', async () => {
    h = await startHarness({ TRUST_PROXY: 'true', RATE_LIMIT_MAX: '3' })
    const codes: number[] = []
    for (let i = 0; i < 6; i++) {
      // The client writes a new address each time; the proxy (10.0.0.1) appends the real one.
      codes.push((await live('10.0.0.1', `198.51.100.${i}, 203.0.113.7`)).statusCode)
    }
    expect(codes).toEqual([200, 200, 200, 429, 429, 429])
    // Not an address: counted against the proxy's own address; nothing the client wrote becomes a key.
    for (const junk of [
      'not-an-ip',
      '*',
      'a}{b',
      '1.2.3.4:80',
      `${'9'.repeat(300)}`,
      '::ffff:zz',
    ]) {
      expect([200, 429], junk).toContain((await live('10.0.0.1', junk)).statusCode)
    }
    await until('the counts in Redis', async () => {
      const keys = await h!.t.redis.keys(`${h!.t.schema.rateLimitPrefix}*`)
      return keys.length === 2
    })
    const keys = await h.t.redis.keys(`${h.t.schema.rateLimitPrefix}*`)
    const names = keys.map((k) => k.slice(h!.t.schema.rateLimitPrefix.length).replace(/:\d+$/, ''))
    expect(names.sort()).toEqual(['10.0.0.1', '203.0.113.7'])
  })

  it('TRUST_PROXY=<CIDR list>: X-Forwarded-For believed only from the listed proxies', async () => {
    h = await startHarness({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1', RATE_LIMIT_MAX: '10' })
    // Through a listed proxy: the client's address counts.
    expect(remaining(await live('10.1.2.3', '198.51.100.4'))).toBe(9)
    // A client behind two listed proxies, and one that wrote its own entry first: the same client.
    expect(remaining(await live('10.1.2.3', '198.51.100.4, 10.9.9.9'))).toBe(8)
    expect(remaining(await live('127.0.0.1', '192.0.2.99, 198.51.100.4'))).toBe(7)
    // Not from a listed proxy: its header is ignored, its own address counts.
    expect(remaining(await live('192.0.2.50', '198.51.100.4'))).toBe(9)
    expect(remaining(await live('192.0.2.50', '198.51.100.77'))).toBe(8)
  })

  it('TRUST_PROXY must be true, false or addresses/CIDRs, and says so', () => {
    expect(toConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(1)
    expect(toConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false)
    expect(toConfig({}).trustProxy).toBe(false)
    expect(
      toConfig({ TRUST_PROXY: '10.0.0.0/8,127.0.0.1, ::1,fd00::/8,loopback' }).trustProxy,
    ).toEqual(['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8', 'loopback'])
    for (const bad of [
      '10.0.0.0/33',
      'proxy.example',
      '1.2.3.4/8/1',
      '::1/129',
      'maybe',
      '10.0.0.0/x',
    ]) {
      expect(() => toConfig({ TRUST_PROXY: bad }), bad).toThrow(/TRUST_PROXY/)
    }
  })
})
