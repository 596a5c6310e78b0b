import type { InjectOptions } from 'fastify'
import { ADMIN_TOKEN, did } from './helpers.js'

// Random requests for the fuzz test (fuzz.test.ts), from a seeded PRNG: mostly well-formed enough to reach
// the handlers, with malformed actors, garbage and huge values, repeated parameters, every method, near-miss
// tokens and odd bodies mixed in.

export const FUZZ_ACTOR = did(1)

interface Draw {
  rand: () => number
  int(n: number): number
  pick<T>(xs: readonly T[]): T
  /** Up to `max` characters from ASCII, Latin-1, CJK and emoji ranges. */
  junk(max: number): string
  /** Percent-encoded mostly; sometimes raw (minus what would end the path). */
  enc(s: string): string
}

function draw(rand: () => number): Draw {
  const int = (n: number) => Math.floor(rand() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
  return {
    rand,
    int,
    pick,
    junk: (max) =>
      Array.from({ length: int(max) }, () =>
        String.fromCodePoint(pick([32, 48, 65, 97, 0x80, 0x3000, 0x1f600]) + int(90)),
      ).join(''),
    enc: (s) => (rand() < 0.7 ? encodeURIComponent(s) : s.replace(/[?#\s]/g, '_')),
  }
}

function actor(d: Draw): string {
  const { pick, int, junk } = d
  return pick([
    () => FUZZ_ACTOR,
    () => FUZZ_ACTOR,
    () => 'alice.test',
    () => '@ALICE.test',
    () => did(1 + int(40)),
    () => `did:plc:${'a'.repeat(int(30))}`,
    () => `did:web:${junk(20)}`,
    () => `${junk(12)}.test`,
    () => 'x'.repeat(int(400)),
    () => pick(['..', '%00', '%zz', '%2F', '*', '{x}', '\u0000', 'did:', '-a.test', 'a..b']),
    () => junk(30),
  ])()
}

/** Values the routes accept, so that most requests get past validation and exercise the handlers. */
const VALID: Record<string, readonly string[]> = {
  window: ['1h', '24h', '48h', '7d', '30d', '90d'],
  direction: ['sent', 'received', 'both'],
  weights: ['like:1', 'reply:3,quote:3,repost:2,like:1', 'like:0,repost:1', 'quote:999.99'],
  nolikes: ['true', 'false'],
  rings: ['1', '8,15,26', '2,3', '50,50', '5,5,5,5,5', '1,1,1,1,1'],
  limit: ['1', '7', '50', '100'],
}

function garbage(d: Draw): string {
  const { pick, int, junk } = d
  return pick([
    () => pick(['49h', '0h', '-1h', '1d', 'up', '', 'like:1000', 'like:-1', 'foo:1', 'like']),
    () => pick(['0', '51', '1,2,3,4,5,6', ',', 'a', 'maybe', '50,50,50']),
    () => String(int(300) - 50),
    () => 'c'.repeat(int(20_000)),
    () => junk(40),
    () => Buffer.from(junk(30)).toString('base64url'),
  ])()
}

function query(d: Draw): string {
  const { pick, rand, enc } = d
  const odd = ['cursor', '__proto__', 'constructor', 'a[]', '', d.junk(5)]
  const n = pick([0, 0, 1, 1, 2, 3, 4, 40, 300])
  const parts = Array.from({ length: n }, () => {
    const key = rand() < 0.85 ? pick(Object.keys(VALID)) : pick(odd)
    const v = Object.hasOwn(VALID, key) && rand() < 0.8 ? pick(VALID[key]!) : garbage(d)
    return `${enc(key)}=${enc(v)}`
  })
  return parts.length > 0 ? `?${parts.join('&')}` : pick(['', '?', '?&&=', '?=x'])
}

function path(d: Draw): string {
  const { pick, int, junk, enc, rand } = d
  const queueAction = () =>
    pick(['retry/failed', 'clean/completed', 'pause', 'empty', 'add', `${int(9)}/retry`, junk(8)])
  return pick([
    () => `/v1/circles/${enc(actor(d))}`,
    () => `/v1/circles/${enc(actor(d))}.${pick(['svg', 'png', 'gif', 'svg.png', ''])}`,
    () => `/v1/interactions/${enc(actor(d))}`,
    () => `/v1/avatars/${enc(actor(d))}`,
    () =>
      `/v1/actors/suggest?q=${enc(pick([actor(d), junk(6), 'al', '@A', '']))}&limit=${enc(pick(['8', '0', '21', junk(3)]))}`,
    () =>
      pick([
        '/v1/stats',
        '/v1/stats/live',
        '/healthz',
        '/readyz',
        '/metrics',
        '/',
        '/stats',
        '/history',
        '/assets/x.js',
      ]),
    () =>
      pick([
        '/docs',
        '/docs/json',
        '/docs/yaml',
        '/docs/static/index.html',
        '/docs/../assets/x.js',
      ]),
    () =>
      `/admin/${pick(['opt-outs', 'tracked', 'backfill'])}${rand() < 0.7 ? `/${enc(actor(d))}` : ''}`,
    () => pick(['/admin/queues', '/admin/queues/api/queues', '/admin/queues/api/redis/stats']),
    () => `/admin/queues/api/queues/${pick(['rollup', 'prune', junk(6)])}/${queueAction()}`,
    () => pick(['//v1//circles', '/v1/circles/', '/v1/', '/../../etc/passwd', '/%2e%2e/%2e%2e']),
    () => `/${junk(int(3) === 0 ? 3000 : 20)}`,
  ])()
}

function authorization(d: Draw): string | undefined {
  const basic = Buffer.from(`ops:${ADMIN_TOKEN}`).toString('base64')
  return d.pick([
    undefined,
    `Bearer ${ADMIN_TOKEN}`,
    `Bearer ${ADMIN_TOKEN.slice(0, -1)}`,
    `Bearer ${ADMIN_TOKEN}x`,
    `bearer ${ADMIN_TOKEN.toUpperCase()}`,
    `Bearer  ${ADMIN_TOKEN}`,
    `Basic ${basic}`,
    `Basic ${basic.slice(1)}`,
    `Basic ${'A'.repeat(d.int(3000))}`,
    `Bearer ${d.junk(50)}`,
    d.junk(20),
  ])
}

function body(d: Draw): { type?: string; payload?: string | Buffer } {
  const { pick, int, junk } = d
  const json = 'application/json'
  return pick([
    () => ({}),
    () => ({ type: json, payload: '{"a":' }),
    () => ({ type: json, payload: JSON.stringify({ did: FUZZ_ACTOR, x: [1, { y: null }] }) }),
    () => ({ type: json, payload: `${'['.repeat(5000)}${']'.repeat(5000)}` }),
    () => ({ type: `${json}; charset=utf-16`, payload: '{}' }),
    () => ({ type: 'text/plain', payload: junk(100) }),
    () => ({ type: 'application/x-www-form-urlencoded', payload: 'a=1&b=%zz' }),
    () => ({ type: 'multipart/form-data; boundary=x', payload: '--x\r\n\r\n--x--' }),
    () => ({
      type: junk(10),
      payload: Buffer.from(Array.from({ length: int(40_000) }, () => int(256))),
    }),
    () => ({ payload: 'x'.repeat(20_000) }),
  ])()
}

function headers(d: Draw): Record<string, string> {
  const { pick, rand, junk } = d
  const h: Record<string, string> = {}
  const auth = authorization(d)
  if (auth !== undefined) h.authorization = auth
  if (rand() < 0.05) h['if-none-match'] = pick(['*', '"x"', 'W/"x", "y"', junk(50)])
  if (rand() < 0.2) h.origin = pick(['https://evil.example', 'null', 'http://localhost', junk(10)])
  if (rand() < 0.1) h['sec-fetch-site'] = pick(['cross-site', 'same-origin', 'none', junk(5)])
  if (rand() < 0.1)
    h['x-forwarded-for'] = pick(['1.2.3.4', '::1, 10.0.0.1', junk(30), '9'.repeat(500)])
  if (rand() < 0.1) h['access-control-request-method'] = pick(['GET', 'PUT', junk(5)])
  if (rand() < 0.05) h.accept = junk(30)
  return h
}

const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'TRACE',
  'SEARCH',
] as const

/** A generator of random requests for `app.inject()`, the same sequence for the same `rand`. */
export function fuzzRequests(rand: () => number): () => InjectOptions {
  const d = draw(rand)
  return () => {
    // GET half the time: most routes are GET routes.
    const method = rand() < 0.5 ? 'GET' : d.pick(METHODS)
    const b = method === 'GET' || method === 'HEAD' ? {} : body(d)
    const h = headers(d)
    if (b.type !== undefined) h['content-type'] = b.type
    return { method, url: path(d) + query(d), headers: h, payload: b.payload }
  }
}
