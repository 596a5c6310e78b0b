import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  AppViewError,
  type CallInfo,
  createBskyClient,
  createProfileCache,
  retryDelayFromHeaders,
} from '../src/index.js'

// A real HTTP server on loopback plays the AppView: each test sets `handler` and reads `requests`.
type Handler = (req: IncomingMessage, url: URL, res: ServerResponse) => void
let server: Server
let base: string
let handler: Handler
let requests: URL[]

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
const did = (i: number) => {
  let s = ''
  for (let n = i; s.length < 24; n = Math.floor(n / 32)) s = B32.charAt(n % 32) + s
  return `did:plc:${s}`
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

function profilesHandler(known: (d: string) => boolean = () => true): Handler {
  return (_req, url, res) => {
    const actors = url.searchParams.getAll('actors')
    json(res, 200, {
      profiles: actors.filter(known).map((a) => ({
        did: a,
        handle: `h-${a.slice(-6)}.test`,
        displayName: `User ${a.slice(-4)}`,
        avatar: `https://cdn.example/${a.slice(-6)}.jpg`,
        viewer: { muted: false },
      })),
    })
  }
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    requests.push(url)
    handler(req, url, res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => {
  server.closeAllConnections()
  return new Promise<void>((r) => server.close(() => r()))
})
beforeEach(() => {
  requests = []
})

const noSleep = { sleep: async () => {} }

describe('bsky client', () => {
  it('batches getProfiles 25 per call and drops unknown actors', async () => {
    handler = profilesHandler()
    const client = createBskyClient({ appviewUrl: base, concurrency: 2 })
    const dids = Array.from({ length: 60 }, (_, i) => did(i + 1000))
    const profiles = await client.getProfiles([...dids, dids[0]!])
    const calls = requests.filter((u) => u.pathname === '/xrpc/app.bsky.actor.getProfiles')
    expect(calls.map((u) => u.searchParams.getAll('actors').length).sort((a, b) => a - b)).toEqual([
      10, 25, 25,
    ])
    expect(profiles).toHaveLength(60)
    expect(profiles[0]).not.toHaveProperty('viewer')
    expect(new Set(profiles.map((p) => p.did))).toEqual(new Set(dids))
  })

  it('retries 5xx and 429 and reports every call', async () => {
    let n = 0
    handler = (_req, _url, res) => {
      n++
      if (n === 1) return json(res, 503, { error: 'Unavailable' })
      if (n === 2) return json(res, 429, { error: 'RateLimitExceeded' }, { 'retry-after': '0' })
      json(res, 200, { did: did(7) })
    }
    const calls: CallInfo[] = []
    const delays: number[] = []
    const client = createBskyClient({
      appviewUrl: base,
      maxRetries: 3,
      onCall: (c) => calls.push(c),
      sleep: async (ms) => {
        delays.push(ms)
      },
    })
    expect(await client.resolveHandle('alice.test')).toBe(did(7))
    expect(n).toBe(3)
    expect(delays[1]).toBe(0) // honoured retry-after: 0
    expect(calls).toHaveLength(1)
    expect(calls[0]).toMatchObject({ ok: true, status: 200, attempts: 3 })
    expect(client.stats()).toMatchObject({ calls: 1, errors: 0, retries: 2 })
  })

  it('gives up after maxRetries with an AppViewError carrying the status', async () => {
    handler = (_req, _url, res) => json(res, 502, { error: 'BadGateway', message: 'upstream' })
    const calls: CallInfo[] = []
    const client = createBskyClient({
      appviewUrl: base,
      maxRetries: 2,
      onCall: (c) => calls.push(c),
      ...noSleep,
    })
    const err = (await client
      .query('app.bsky.actor.getProfile', { actor: 'x.test' })
      .catch((e: unknown) => e)) as AppViewError
    expect(err).toBeInstanceOf(AppViewError)
    expect(err.status).toBe(502)
    expect(err.message).toContain('upstream')
    expect(requests).toHaveLength(3)
    expect(calls[0]).toMatchObject({ ok: false, status: 502, error: 'http', attempts: 3 })
  })

  it('fails at once when the rate-limit reset is further away than maxDelayMs', async () => {
    const reset = Math.floor(Date.now() / 1000) + 60
    handler = (_req, _url, res) =>
      json(res, 429, { error: 'RateLimitExceeded' }, { 'ratelimit-reset': String(reset) })
    const client = createBskyClient({
      appviewUrl: base,
      maxRetries: 5,
      maxDelayMs: 1000,
      ...noSleep,
    })
    await expect(client.getProfiles([did(1)])).rejects.toMatchObject({ status: 429 })
    expect(requests).toHaveLength(1)
  })

  it('does not retry a 400, and resolveHandle maps it to null', async () => {
    handler = (_req, _url, res) =>
      json(res, 400, { error: 'InvalidRequest', message: 'Unable to resolve handle' })
    const client = createBskyClient({ appviewUrl: base, ...noSleep })
    expect(await client.resolveHandle('nobody.test')).toBeNull()
    expect(requests).toHaveLength(1)
  })

  it('times out a silent server and reports network errors', async () => {
    handler = () => {} // never answers
    const calls: CallInfo[] = []
    const client = createBskyClient({
      appviewUrl: base,
      timeoutMs: 100,
      maxRetries: 1,
      onCall: (c) => calls.push(c),
      ...noSleep,
    })
    await expect(client.resolveHandle('slow.test')).rejects.toMatchObject({
      status: 0,
      error: 'Timeout',
    })
    expect(calls[0]).toMatchObject({ ok: false, error: 'timeout', attempts: 2 })
    const down = createBskyClient({ appviewUrl: 'http://127.0.0.1:1', maxRetries: 0 })
    await expect(down.getProfiles([did(1)])).rejects.toMatchObject({
      status: 0,
      error: 'NetworkError',
    })
  })

  it('paginates until the cursor runs out', async () => {
    handler = (_req, url, res) => {
      const c = Number(url.searchParams.get('cursor') ?? '0')
      json(res, 200, { items: [c * 2, c * 2 + 1], ...(c < 2 ? { cursor: String(c + 1) } : {}) })
    }
    const client = createBskyClient({ appviewUrl: base })
    const got: number[] = []
    for await (const x of client.paginate<number>('app.test.list', { limit: 2 }, 'items'))
      got.push(x)
    expect(got).toEqual([0, 1, 2, 3, 4, 5])
    expect(requests.map((u) => u.searchParams.get('cursor'))).toEqual([null, '1', '2'])
  })

  it('reads retry-after as seconds or a date and ratelimit-reset as epoch seconds', () => {
    const now = Math.floor(Date.now() / 1000) * 1000
    expect(retryDelayFromHeaders(new Headers({ 'retry-after': '3' }), now)).toBe(3000)
    expect(
      retryDelayFromHeaders(
        new Headers({ 'retry-after': new Date(now + 5000).toUTCString() }),
        now,
      ),
    ).toBe(5000)
    expect(
      retryDelayFromHeaders(new Headers({ 'ratelimit-reset': String(now / 1000 + 2) }), now),
    ).toBe(2000)
    expect(retryDelayFromHeaders(new Headers({}), now)).toBeUndefined()
  })
})

describe('profile cache', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('bsky-client')
  })
  afterEach(() => t.cleanup())

  it('serves from Redis after one fetch, caches unknown DIDs as missing, with TTLs', async () => {
    handler = profilesHandler((a) => a !== did(3))
    const client = createBskyClient({ appviewUrl: base })
    const cache = createProfileCache({
      redis: t.redis,
      schema: t.schema,
      client,
      ttlSeconds: 100,
      missingTtlSeconds: 10,
    })
    const dids = [did(1), did(2), did(3), 'not-a-did']
    const first = await cache.get(dids)
    expect(first.complete).toBe(true)
    expect([...first.profiles.keys()].sort()).toEqual([did(1), did(2)].sort())
    expect([...first.missing]).toEqual([did(3)])
    expect(requests).toHaveLength(1)
    expect(requests[0]!.searchParams.getAll('actors')).not.toContain('not-a-did')
    const ttl = await t.redis.ttl(t.schema.profile(did(1)))
    expect(ttl).toBeGreaterThan(90)
    expect(await t.redis.ttl(t.schema.profile(did(3)))).toBeLessThanOrEqual(10)

    const second = await cache.get(dids)
    expect(requests).toHaveLength(1)
    expect(second.profiles.get(did(2))?.handle).toBe(first.profiles.get(did(2))?.handle)
    expect(second.missing.has(did(3))).toBe(true)
  })

  it('returns what it has with complete=false when the AppView is down', async () => {
    const client = createBskyClient({ appviewUrl: 'http://127.0.0.1:1', maxRetries: 0 })
    const cache = createProfileCache({ redis: t.redis, schema: t.schema, client })
    await cache.put([{ did: did(1), handle: 'one.test' }])
    const got = await cache.get([did(1), did(2)])
    expect(got.complete).toBe(false)
    expect(got.profiles.get(did(1))?.handle).toBe('one.test')
    expect(got.missing.size).toBe(0)
    expect(await t.redis.exists(t.schema.profile(did(2)))).toBe(0)
  })
})
