import { isValidDid, isValidHandle } from '@circles/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, did, type Harness, startHarness } from './helpers.js'

// Everything a client can send, thrown at every route: nothing may answer 5xx, every error is JSON that says
// what is wrong, and no key outside the schema's shapes (or built from an unvalidated value) reaches Redis.

const ACTORS = [
  '',
  ' ',
  '@',
  '*',
  '..',
  '../../etc/passwd',
  '%00',
  '{x}',
  'a b',
  'did:plc:',
  'did:plc:AAAAAAAAAAAAAAAAAAAAAAAA',
  'did:plc:aaaaaaaaaaaaaaaaaaaaaaa1',
  'did:web:evil.example/path',
  'did:key:z6Mk',
  'DID:PLC:aaaaaaaaaaaaaaaaaaaaaaaa',
  'x'.repeat(300),
  `${'a'.repeat(64)}.test`,
  'ünïcödé.test',
  '😀.test',
  '-lead.test',
  'trail-.test',
  'nodot',
  '1.2.3.4',
  'alice.test\r\nset x 1',
  "'; DROP TABLE users; --",
]

const QUERIES = [
  'window=0h',
  'window=49h',
  'window=-1h',
  'window=1d',
  'window=48',
  'window=*',
  'direction=up',
  'direction=',
  'weights=like:1000',
  'weights=like:-1',
  'weights=foo:1',
  'weights=like:0,repost:0,reply:0,quote:0',
  'weights=like',
  `weights=${'like:1,'.repeat(20)}`,
  'rings=0',
  'rings=51',
  'rings=50,50,50',
  'rings=1,2,3,4,5,6',
  'rings=a',
  'rings=,',
  'nolikes=maybe',
  'window=48h&window=24h',
  'limit=0',
  'limit=101',
  'limit=abc',
  'cursor=*',
  'cursor=a%20b',
  `cursor=${'c'.repeat(200)}`,
]

const KEY_SHAPES = [
  /^circle:\{(.+)\}:[0-9a-f]+$/,
  /^circle-lock:\{(.+)\}:[0-9a-f]+$/,
  /^circle-img:\{(.+)\}:[0-9a-f]+$/,
  /^profile:(.+)$/,
  /^profile-names(?::seen)?$/,
  /^handle:(.+)$/,
  /^avatar:[0-9a-f]+$/,
  /^optouts(:version)?$/,
  /^tracked$/,
  /^circle-requests$/,
  /^ratelimit:.+$/,
]

describe('bad input on every route', () => {
  let h: Harness
  let seeded: Set<string>
  const A = did(1)
  beforeAll(async () => {
    h = await startHarness({ RATE_LIMIT_MAX: '100000' })
    h.appview.profiles.set(A, { did: A, handle: 'alice.test' })
    await h.link(A, did(2), { like: 1 })
    seeded = new Set(await h.t.redis.keys(`${h.t.prefix}*`))
  })
  afterAll(() => h.close())

  async function expectClientError(method: 'GET' | 'PUT' | 'DELETE', url: string, headers = {}) {
    const r = await h.app.inject({ method, url, headers })
    expect(r.statusCode, `${method} ${url}`).toBeGreaterThanOrEqual(400)
    expect(r.statusCode, `${method} ${url}`).toBeLessThan(500)
    const body = r.json()
    expect(typeof body.message, url).toBe('string')
    expect(body.message.length, url).toBeGreaterThan(5)
    return r
  }

  it('rejects bad actors on every actor route with 400 or 404', async () => {
    for (const a of ACTORS) {
      const enc = encodeURIComponent(a)
      for (const path of [
        `/v1/circles/${enc}`,
        `/v1/circles/${enc}.svg`,
        `/v1/circles/${enc}.png`,
        `/v1/interactions/${enc}`,
      ]) {
        const r = await expectClientError('GET', path)
        expect([400, 404], path).toContain(r.statusCode)
      }
    }
  })

  it('rejects bad query parameters with a message naming them', async () => {
    for (const q of QUERIES) {
      for (const path of [`/v1/circles/${A}`, `/v1/circles/${A}.png`, `/v1/interactions/${A}`]) {
        const r = await h.app.inject(`${path}?${q}`)
        expect(r.statusCode, `${path}?${q}`).toBeLessThan(500)
        if (r.statusCode >= 400)
          expect(r.json().message, q).toMatch(
            /window|direction|weights|rings|nolikes|limit|cursor|querystring/,
          )
      }
    }
    // The suggestions' prefix: every odd actor and query value is a 400 or an answer, never a 500.
    for (const q of [...ACTORS, ...QUERIES]) {
      const url = `/v1/actors/suggest?q=${encodeURIComponent(q)}`
      const r = await h.app.inject(url)
      expect([200, 400], url).toContain(r.statusCode)
      if (r.statusCode === 400) expect(r.json().message, url).toMatch(/\bq\b/)
    }
    // Unknown parameters are ignored, not fatal.
    expect((await h.app.inject(`/v1/circles/${A}?foo=bar`)).statusCode).toBe(200)
  })

  it('says what a good value looks like instead of quoting a regex', async () => {
    const cases: [string, RegExp][] = [
      ['window=1', /querystring\/window: "1" is not valid; expected 1h\.\.48h .*7d, 30d, 90d/],
      [
        'direction=up',
        /querystring\/direction: "up" is not valid; expected sent \(whom .*received .* or both/,
      ],
      ['rings=a', /querystring\/rings: "a" is not valid; expected Ring sizes/],
      ['weights=like', /querystring\/weights: "like" is not valid; expected Per-kind weights/],
    ]
    for (const [q, want] of cases) {
      const r = await h.app.inject(`/v1/circles/${A}?${q}`)
      expect(r.statusCode, q).toBe(400)
      expect(r.json().message, q).toMatch(want)
      expect(r.json().message, q).not.toMatch(/pattern|anyOf|\^/)
    }
    // Errors without a described schema keep AJV's own wording.
    const limit = await h.app.inject(`/v1/interactions/${A}?limit=1000`)
    expect(limit.statusCode).toBe(400)
    expect(limit.json().message).toBe('querystring/limit must be <= 100')
  })

  it('rejects bad DIDs and tokens on admin routes', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
    for (const a of ACTORS) {
      const enc = encodeURIComponent(a)
      for (const method of ['PUT', 'DELETE'] as const) {
        for (const list of ['opt-outs', 'tracked']) {
          if (a === '') continue // that is the list route itself
          await expectClientError(method, `/admin/${list}/${enc}`, auth)
        }
      }
    }
    for (const header of [
      '',
      'Bearer',
      'Bearer ',
      `bearer ${ADMIN_TOKEN}`,
      `Basic ${ADMIN_TOKEN}`,
      `Bearer ${ADMIN_TOKEN}x`,
      'Bearer \u0000',
    ]) {
      const r = await h.app.inject({ url: '/admin/opt-outs', headers: { authorization: header } })
      expect([401, 403], JSON.stringify(header)).toContain(r.statusCode)
    }
    expect(await h.t.redis.scard(h.t.schema.optOuts)).toBe(0)
  })

  it('answers unknown routes and methods with JSON 404s', async () => {
    for (const url of ['/v1', '/v1/circles', '/nope', '/v1/circles/a/b', '/admin']) {
      const r = await h.app.inject(url)
      expect(r.statusCode, url).toBe(404)
      expect(r.json().error).toBe('Not Found')
    }
    const post = await h.app.inject({
      method: 'POST',
      url: `/v1/circles/${A}`,
      payload: 'x'.repeat(100_000),
    })
    expect(post.statusCode).toBeGreaterThanOrEqual(400)
    expect(post.statusCode).toBeLessThan(500)
  })

  it('wrote only keys of known shapes, each built from a validated identifier', async () => {
    // Keys the index seeding wrote are the indexer's business; everything else was written by the API.
    const keys = (await h.t.redis.keys(`${h.t.prefix}*`)).filter((k) => !seeded.has(k))
    expect(keys.length).toBeGreaterThan(0)
    for (const full of keys) {
      const k = full.slice(h.t.prefix.length)
      const shape = KEY_SHAPES.find((re) => re.test(k))
      expect(shape, k).toBeDefined()
      const id = shape!.exec(k)?.[1]
      if (id !== undefined && !k.startsWith('ratelimit')) {
        expect(isValidDid(id) || (k.startsWith('handle:') && isValidHandle(id)), k).toBe(true)
      }
    }
  })
})
