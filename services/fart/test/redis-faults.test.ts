import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, type PrivateRedis, startRedisServer } from '@circles/testkit'
import type { LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, did, type Harness, startHarness } from './helpers.js'

// What Redis really does, on a private redis-server each test can break: out of memory, a replica that
// refuses writes, stopped, loading its data, busy with a script. The API answers circles uncached while
// only writes are refused, 503 with Retry-After while Redis cannot answer, and never a 500.

const A = did(1)
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
/** What must never reach a client: a stack frame, a source path, a Redis reply's class. */
const LEAK = /\bat \S+ \(|node_modules|\/work\/|\/src\/|\.[jt]s:\d+|ReplyError|MaxRetries/

async function seed(h: Harness) {
  h.appview.profiles.set(A, { did: A, handle: 'alice.test', avatar: true })
  for (let i = 1; i <= 12; i++) {
    const p = did(100 + i)
    await h.link(A, p, { like: 13 - i, reply: i % 3 })
    h.appview.profiles.set(p, { did: p, handle: `p${i}.test`, avatar: i % 2 === 0 })
  }
}

/** Every route that needs Redis, as one request each. */
function redisRoutes(): { method: 'GET' | 'PUT'; url: string; headers?: Record<string, string> }[] {
  return [
    { method: 'GET', url: `/v1/circles/${A}?rings=5` },
    { method: 'GET', url: `/v1/circles/${A}.svg?rings=6` },
    { method: 'GET', url: `/v1/circles/${A}.png?rings=7` },
    { method: 'GET', url: '/v1/circles/alice.test?rings=8' },
    { method: 'GET', url: `/v1/interactions/${A}` },
    { method: 'GET', url: '/v1/stats' },
    { method: 'GET', url: '/v1/stats/live' },
    { method: 'GET', url: '/v1/actors/suggest?q=al' },
    { method: 'GET', url: `/v1/avatars/${A}` },
    { method: 'GET', url: '/admin/opt-outs', headers: auth },
    { method: 'PUT', url: `/admin/tracked/${A}`, headers: auth },
  ]
}

function expectNoLeak(r: LightMyRequestResponse, what: string) {
  expect(r.statusCode < 500 || r.statusCode === 503, `${what}: ${r.statusCode} ${r.body}`).toBe(
    true,
  )
  expect(r.body, what).not.toMatch(LEAK)
}

function expectUnavailable(r: LightMyRequestResponse, what: string, why: RegExp) {
  expect(r.statusCode, `${what}: ${r.body}`).toBe(503)
  expect(Number(r.headers['retry-after']), what).toBeGreaterThan(0)
  expect(r.json().message, what).toMatch(why)
  expectNoLeak(r, what)
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000) {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('the API when Redis is in trouble', () => {
  let server: PrivateRedis
  let h: Harness
  let dir: string
  const others: Redis[] = []
  /** Another client of the private server (for the test's own commands). */
  const client = () => {
    const c = new Redis(server.url, { maxRetriesPerRequest: 1 })
    c.on('error', () => {})
    others.push(c)
    return c
  }
  beforeEach(async () => {
    // A data folder of its own: DEBUG RELOAD writes an RDB there.
    dir = mkdtempSync(join(tmpdir(), 'fart-faults-'))
    server = await startRedisServer(['--dir', dir, '--enable-debug-command', 'local'])
    h = await startHarness({ RATE_LIMIT_MAX: '1000' }, { redisUrl: server.url })
    await seed(h)
  })
  afterEach(async () => {
    for (const c of others.splice(0)) c.disconnect()
    await h.close()
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('documents the 503 and its Retry-After at /docs on every route that needs Redis', async () => {
    const spec = (await h.app.inject('/docs/json')).json()
    const ops = [
      ['/v1/circles/{actor}', 'get'],
      ['/v1/circles/{actor}.svg', 'get'],
      ['/v1/circles/{actor}.png', 'get'],
      ['/v1/interactions/{actor}', 'get'],
      ['/v1/stats', 'get'],
      ['/v1/stats/live', 'get'],
      ['/v1/actors/suggest', 'get'],
      ['/v1/avatars/{did}', 'get'],
      ['/admin/opt-outs', 'get'],
      ['/admin/opt-outs/{did}', 'put'],
      ['/admin/tracked/{did}', 'delete'],
      ['/readyz', 'get'],
    ]
    for (const [path, method] of ops) {
      const r503 = spec.paths[path!]?.[method!]?.responses?.['503']
      expect(r503?.headers?.['retry-after'], `${method} ${path}`).toBeDefined()
    }
  })

  it('out of memory: circles are served uncached as JSON, SVG and PNG; writes it needs answer 503', async () => {
    await h.t.redis.config('SET', 'maxmemory', '1')
    const json = await Promise.all(
      Array.from({ length: 4 }, () => h.app.inject(`/v1/circles/${A}`)),
    )
    for (const r of json) {
      expect(r.statusCode, r.body).toBe(200)
      expect(r.headers['x-cache']).toBe('uncached')
      expect(r.json().rings[0].members.length).toBeGreaterThan(0)
    }
    for (const format of ['svg', 'png']) {
      const r = await h.app.inject(`/v1/circles/${A}.${format}`)
      expect(r.statusCode, `${format}: ${r.body}`).toBe(200)
      expect(r.headers['content-type']).toContain(`image/${format}`)
    }
    // A handle resolves through the AppView though its cache entry cannot be stored.
    expect((await h.app.inject('/v1/circles/alice.test')).statusCode).toBe(200)
    expect((await h.app.inject(`/v1/interactions/${A}`)).statusCode).toBe(200)
    expect((await h.app.inject('/readyz')).statusCode).toBe(200)
    // An opt-out cannot be recorded: 503, not 500 and not a silent success.
    const put = await h.app.inject({ method: 'PUT', url: `/admin/opt-outs/${A}`, headers: auth })
    expectUnavailable(put, 'PUT opt-out', /refuses writes right now \(OOM\)/)
    for (const r of redisRoutes()) expectNoLeak(await h.app.inject(r), r.url)
    expect(await h.t.redis.keys(`${h.t.prefix}circle:*`)).toEqual([])

    // Memory back: cached again.
    await h.t.redis.config('SET', 'maxmemory', '0')
    expect((await h.app.inject(`/v1/circles/${A}?rings=3`)).headers['x-cache']).toBe('miss')
    expect((await h.app.inject(`/v1/circles/${A}?rings=3`)).headers['x-cache']).toBe('hit')
  })

  it('a replica that refuses writes (READONLY): circles served uncached', async () => {
    // Its master is nowhere: it keeps its data and serves reads (replica-serve-stale-data yes).
    await h.t.redis.call('REPLICAOF', '127.0.0.1', String(await freePort()))
    const r = await h.app.inject(`/v1/circles/${A}`)
    expect(r.statusCode, r.body).toBe(200)
    expect(r.headers['x-cache']).toBe('uncached')
    expect((await h.app.inject(`/v1/circles/${A}.svg`)).statusCode).toBe(200)
    const put = await h.app.inject({ method: 'PUT', url: `/admin/tracked/${A}`, headers: auth })
    expectUnavailable(put, 'PUT tracked', /refuses writes right now \(READONLY\)/)
    await h.t.redis.call('REPLICAOF', 'NO', 'ONE')
  })

  it('Redis stopped: 503 with Retry-After on every route that needs it; healthz 200, readyz 503; then back', async () => {
    await server.stop()
    await until('the client to notice', () => h.t.redis.status !== 'ready')
    for (const r of redisRoutes()) {
      expectUnavailable(await h.app.inject(r), `${r.method} ${r.url}`, /unreachable/)
    }
    expect((await h.app.inject('/healthz')).statusCode).toBe(200)
    const ready = await h.app.inject('/readyz')
    expect(ready.statusCode).toBe(503)
    expect(ready.json()).toEqual({ ok: false, reason: 'Redis is unreachable' })
    // The pages and their assets need no Redis (the assets are named by hash: read from the page).
    const script =
      /<script src="([^"]+)"/.exec((await h.app.inject('/')).body)?.[1] ?? '/assets/none'
    for (const url of ['/', '/stats', '/history', script, '/docs/json', '/metrics']) {
      expect((await h.app.inject(url)).statusCode, url).toBe(200)
    }
    // Back on the same port (empty: no persistence): answers again once ioredis has reconnected.
    server = await startRedisServer(['--dir', dir], { port: server.port })
    await until('readyz', async () => (await h.app.inject('/readyz')).statusCode === 200)
    expect((await h.app.inject(`/v1/circles/${A}`)).statusCode).toBe(200)
  })

  it('Redis frozen (SIGSTOP): every route that needs it answers 503 after API_REDIS_TIMEOUT_MS, not never', async () => {
    await h.close()
    h = await startHarness(
      { RATE_LIMIT_MAX: '1000', API_REDIS_TIMEOUT_MS: '300' },
      { redisUrl: server.url },
    )
    await seed(h)
    process.kill(server.pid, 'SIGSTOP')
    try {
      const t0 = Date.now()
      for (const r of redisRoutes()) {
        expectUnavailable(await h.app.inject(r), `${r.method} ${r.url}`, /unreachable/)
      }
      const ready = await h.app.inject('/readyz')
      expect(ready.statusCode).toBe(503)
      // Each one waited its timeout, not more (a frozen Redis used to hold them all).
      expect(Date.now() - t0).toBeLessThan(redisRoutes().length * 3000)
    } finally {
      process.kill(server.pid, 'SIGCONT')
    }
    await until('readyz', async () => (await h.app.inject('/readyz')).statusCode === 200)
    expect((await h.app.inject(`/v1/circles/${A}`)).statusCode).toBe(200)
  })

  it('Redis lost during a computation: 503, and the next request after its return computes', async () => {
    h.index.delayMs = 300
    const pending = h.app.inject(`/v1/circles/${A}?rings=4`)
    await new Promise((r) => setTimeout(r, 100))
    await server.crash()
    expectUnavailable(await pending, 'in flight', /unreachable/)
    h.index.delayMs = 0
    server = await startRedisServer(['--dir', dir], { port: server.port })
    await until('readyz', async () => (await h.app.inject('/readyz')).statusCode === 200)
    expect((await h.app.inject(`/v1/circles/${A}?rings=4`)).statusCode).toBe(200)
  })

  it('Redis LOADING its data (DEBUG RELOAD, slowed down): 503 "loading", then served again', async () => {
    const admin = client()
    // 20k small keys at 50 us each: about a second of loading, with clients answered LOADING meanwhile.
    await admin.call('DEBUG', 'POPULATE', '20000', 'filler', '16')
    await admin.config('SET', 'key-load-delay', '50')
    await admin.config('SET', 'loading-process-events-interval-bytes', '1024')
    let reloaded = false
    const reload = admin.call('DEBUG', 'RELOAD').finally(() => {
      reloaded = true
    })
    const seen: LightMyRequestResponse[] = []
    let ready: LightMyRequestResponse | undefined
    while (!reloaded) {
      const r = await h.app.inject(`/v1/circles/${A}?rings=${2 + (seen.length % 40)}`)
      seen.push(r)
      if (r.statusCode === 503 && ready === undefined) ready = await h.app.inject('/readyz')
    }
    await reload
    const loading = seen.filter((r) => r.statusCode === 503)
    expect(loading.length, 'requests answered while loading').toBeGreaterThan(0)
    for (const r of seen) expect([200, 503], r.body).toContain(r.statusCode)
    for (const r of loading) expectUnavailable(r, 'while loading', /loading/)
    expect(ready?.statusCode).toBe(503)
    expect(ready?.json().reason).toBe('Redis is loading its data')
    expect((await h.app.inject(`/v1/circles/${A}`)).statusCode).toBe(200)
  })

  it('Redis BUSY with a long script: 503 "busy", then served again once it is killed', async () => {
    const admin = client()
    const runner = client()
    await Promise.all([admin.ping(), runner.ping()])
    await admin.config('SET', 'busy-reply-threshold', '50')
    const script = runner.eval('while true do end', 0).catch((err: Error) => err)
    await new Promise((r) => setTimeout(r, 150))
    for (const r of redisRoutes()) {
      expectUnavailable(await h.app.inject(r), `${r.method} ${r.url}`, /busy/)
    }
    expect((await h.app.inject('/readyz')).statusCode).toBe(503)
    expect((await h.app.inject('/healthz')).statusCode).toBe(200)
    await admin.call('SCRIPT', 'KILL')
    expect(String(await script)).toContain('killed')
    expect((await h.app.inject(`/v1/circles/${A}`)).statusCode).toBe(200)
  })
})
