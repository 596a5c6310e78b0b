import { JOB_KINDS } from '@circles/redis-schema'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Circle } from '../src/circles.js'
import { toConfig } from '../src/config.js'
import { ADMIN_TOKEN, buildSecondApp, did, type Harness, startHarness } from './helpers.js'

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
const A = did(1)

function members(c: Circle): string[] {
  return c.rings.flatMap((r) => r.members.map((m) => m.did))
}

/** A has 30 partners: partner i gets (30 - i) likes from A; partners 1..3 also reply to A. */
async function seed(h: Harness) {
  h.appview.profiles.set(A, { did: A, handle: 'alice.test', displayName: 'Alice A', avatar: true })
  for (let i = 1; i <= 30; i++) {
    const p = did(100 + i)
    await h.link(A, p, { like: 31 - i })
    h.appview.profiles.set(p, { did: p, handle: `p${i}.test`, avatar: i % 2 === 0 })
  }
  for (let i = 1; i <= 3; i++) await h.link(did(100 + 27 + i), A, { reply: 10 })
}

describe('fart API', () => {
  let h: Harness
  beforeEach(async () => {
    h = await startHarness()
    await seed(h)
  })
  afterEach(() => h.close())

  it('serves health, readiness and metrics', async () => {
    expect((await h.app.inject('/healthz')).json()).toEqual({ ok: true })
    const ready = await h.app.inject('/readyz')
    expect(ready.statusCode).toBe(200)
    expect(ready.json().ok).toBe(true)
    await h.app.inject(`/v1/circles/${A}`)
    const m = await h.app.inject('/metrics')
    expect(m.body).toContain('fart_http_request_duration_seconds_bucket')
    expect(m.body).toContain('fart_appview_calls_total')
    expect(m.body).toContain('route="/v1/circles/:actor"')
  })

  it('draws rings by weighted score with profiles, then serves them from the cache', async () => {
    const r1 = await h.app.inject(`/v1/circles/${A}?rings=2,3,4`)
    expect(r1.statusCode).toBe(200)
    expect(r1.headers['x-cache']).toBe('miss')
    const c = r1.json() as Circle
    expect(c.rings.map((r) => r.members.length)).toEqual([2, 3, 4])
    // Replies weigh 3: partners 28..30 (10 replies each = 30 + few likes) lead.
    expect(members(c).slice(0, 3).sort()).toEqual([did(128), did(129), did(130)].sort())
    expect(c.actor).toMatchObject({ did: A, handle: 'alice.test', displayName: 'Alice A' })
    expect(c.rings[0]!.members[0]!.handle).toMatch(/^p\d+\.test$/)
    expect(c.profilesComplete).toBe(true)
    expect(c.weights).toEqual({ like: 1, repost: 2, reply: 3, quote: 3 })
    const r2 = await h.app.inject(`/v1/circles/${A}?rings=2,3,4`)
    expect(r2.headers['x-cache']).toBe('hit')
    expect(r2.body).toBe(r1.body)
    expect(h.index.calls).toBe(1)
    expect(await h.t.redis.zscore(h.t.schema.circleRequests, A)).not.toBeNull()
  })

  it('uses the documented defaults, and nolikes / direction / weights change the ranking', async () => {
    const def = (await h.app.inject(`/v1/circles/${A}`)).json() as Circle
    expect(def.ringSizes).toEqual([8, 15, 26])
    expect(def.window).toBe('48h')
    expect(def.direction).toBe('both')
    expect(members(def)).toHaveLength(30)
    const nolikes = (await h.app.inject(`/v1/circles/${A}?nolikes=true`)).json() as Circle
    expect(members(nolikes).sort()).toEqual([did(128), did(129), did(130)].sort())
    const sent = (
      await h.app.inject(`/v1/circles/${A}?direction=sent&weights=like:1`)
    ).json() as Circle
    expect(members(sent)[0]).toBe(did(101))
    const received = (await h.app.inject(`/v1/circles/${A}?direction=received`)).json() as Circle
    expect(members(received)).toHaveLength(3)
  })

  it('resolves handles, 404s unknown ones and 400s invalid actors with a reason', async () => {
    const r = await h.app.inject('/v1/circles/@Alice.test')
    expect(r.statusCode).toBe(200)
    expect(r.json().actor.did).toBe(A)
    const unknown = await h.app.inject('/v1/circles/nobody.test')
    expect(unknown.statusCode).toBe(404)
    expect(unknown.json().message).toContain('does not resolve')
    for (const bad of ['did:plc:short', 'not a handle', '-bad-.test', 'did:key:zabc']) {
      const res = await h.app.inject(`/v1/circles/${encodeURIComponent(bad)}`)
      expect(res.statusCode, bad).toBe(400)
      expect(res.json().message, bad).toMatch(/DID|handle/)
    }
  })

  it('serves long windows from the daily aggregates plus the live index', async () => {
    const r = await h.app.inject(`/v1/circles/${A}?window=30d`)
    expect(r.statusCode).toBe(200)
    const c = r.json() as Circle
    expect(c.window).toBe('30d')
    // No roll-ups yet: the live hours alone, so the same people as the 48 h circle.
    const live = (await h.app.inject(`/v1/circles/${A}`)).json() as Circle
    expect(members(c).sort()).toEqual(members(live).sort())
  })

  it('answers long windows with 501 when no long-window reader is wired', async () => {
    const h2 = await startHarness({}, { longWindows: false })
    try {
      const r = await h2.app.inject(`/v1/circles/${A}?window=7d`)
      expect(r.statusCode).toBe(501)
      expect(r.json().message).toContain('7d')
    } finally {
      await h2.close()
    }
  })

  it('opt-outs: no circle of their own, gone from cached circles at once, back after removal', async () => {
    const before = (await h.app.inject(`/v1/circles/${A}`)).json() as Circle
    const X = members(before)[0]!
    const put = await h.app.inject({ method: 'PUT', url: `/admin/opt-outs/${X}`, headers: auth })
    expect(put.json()).toEqual({ did: X, member: true, changed: true })
    const own = await h.app.inject(`/v1/circles/${X}`)
    expect(own.statusCode).toBe(403)
    expect(own.json().message).toContain('opted out')
    const after = await h.app.inject(`/v1/circles/${A}`)
    expect(after.headers['x-cache']).toBe('miss')
    expect(members(after.json())).not.toContain(X)
    expect(
      (await h.app.inject(`/v1/interactions/${A}?limit=100`))
        .json()
        .partners.map((p: { did: string }) => p.did),
    ).not.toContain(X)
    expect((await h.app.inject(`/v1/interactions/${X}`)).statusCode).toBe(403)
    expect((await h.app.inject(`/v1/circles/${X}.png`)).statusCode).toBe(403)
    const list = await h.app.inject({ url: '/admin/opt-outs', headers: auth })
    expect(list.json()).toEqual({
      count: 1,
      dids: [X],
      reasons: { admin: [X], block: [], label: [] },
    })
    await h.app.inject({ method: 'DELETE', url: `/admin/opt-outs/${X}`, headers: auth })
    expect(members((await h.app.inject(`/v1/circles/${A}`)).json())).toContain(X)
  })

  it('another process stops showing an opted-out account within LOCAL_CACHE_MS', async () => {
    const h2 = await startHarness({ LOCAL_CACHE_MS: '300' })
    try {
      await seed(h2)
      const other = await buildSecondApp(h2)
      try {
        const first = (await other.inject(`/v1/circles/${A}`)).json() as Circle
        const X = members(first)[0]!
        await h2.app.inject({ method: 'PUT', url: `/admin/opt-outs/${X}`, headers: auth })
        expect(members((await h2.app.inject(`/v1/circles/${A}`)).json())).not.toContain(X)
        await new Promise((r) => setTimeout(r, 350))
        expect(members((await other.inject(`/v1/circles/${A}`)).json())).not.toContain(X)
        expect((await other.inject(`/v1/circles/${X}`)).statusCode).toBe(403)
      } finally {
        await other.close()
      }
    } finally {
      await h2.close()
    }
  })

  it('drops accounts the AppView no longer knows (deleted, taken down) and 404s such an actor', async () => {
    const gone = did(101)
    h.appview.profiles.delete(gone)
    const c = (await h.app.inject(`/v1/circles/${A}`)).json() as Circle
    expect(members(c)).not.toContain(gone)
    expect(members(c)).toHaveLength(29)
    h.appview.profiles.delete(A)
    await h.t.redis.del(h.t.schema.profile(A))
    const r = await h.app.inject(`/v1/circles/${A}?window=24h`)
    expect(r.statusCode).toBe(404)
    expect(r.json().message).toContain('deleted')
  })

  it('gives purged accounts (deleted or taken down on the firehose) no circle and drops them from others', async () => {
    const X = did(101)
    await h.writer.purge(X, Date.now())
    const own = await h.app.inject(`/v1/circles/${X}`)
    expect(own.statusCode).toBe(404)
    expect(own.json().error).toBe('AccountUnavailable')
    const c = (await h.app.inject(`/v1/circles/${A}`)).json() as Circle
    expect(members(c)).not.toContain(X)
    expect(members(c)).toHaveLength(29)
  })

  it('serves circles with DIDs and profilesComplete=false while the AppView is down', async () => {
    h.appview.down = true
    const r = await h.app.inject(`/v1/circles/${A}`)
    expect(r.statusCode).toBe(200)
    const c = r.json() as Circle
    expect(c.profilesComplete).toBe(false)
    expect(members(c)).toHaveLength(30)
    expect(c.rings[0]!.members[0]!.handle).toBeUndefined()
    // Cached briefly only (PARTIAL_CACHE_TTL_SECONDS), so profiles fill in soon after the AppView is back.
    const [key] = await h.t.redis.keys(`${h.t.schema.prefix}circle:*`)
    const ttl = await h.t.redis.ttl(key!)
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(30)
    // Handles cannot be resolved either: a clear 503, not a crash.
    const byHandle = await h.app.inject('/v1/circles/alice.test')
    expect(byHandle.statusCode).toBe(503)
    expect(byHandle.json().message).toContain('use the DID')
    h.appview.down = false
  })

  it('fills profiles in once the AppView is back (partial circles are cached briefly)', async () => {
    const h2 = await startHarness({ PARTIAL_CACHE_TTL_SECONDS: '1', LOCAL_CACHE_MS: '0' })
    try {
      await seed(h2)
      h2.appview.down = true
      const partial = (await h2.app.inject(`/v1/circles/${A}`)).json() as Circle
      expect(partial.profilesComplete).toBe(false)
      h2.appview.down = false
      await new Promise((r) => setTimeout(r, 1100))
      const full = (await h2.app.inject(`/v1/circles/${A}`)).json() as Circle
      expect(full.profilesComplete).toBe(true)
      expect(full.actor.handle).toBe('alice.test')
      expect(full.rings[0]!.members.every((m) => typeof m.handle === 'string')).toBe(true)
    } finally {
      await h2.close()
    }
  })

  it('computes a circle once for many concurrent requests, across two app instances', async () => {
    h.index.delayMs = 150
    const other = await buildSecondApp(h)
    try {
      const reqs = Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? other : h.app).inject(`/v1/circles/${A}?window=12h`),
      )
      const res = await Promise.all(reqs)
      expect(res.every((r) => r.statusCode === 200)).toBe(true)
      expect(new Set(res.map((r) => r.body)).size).toBe(1)
      expect(h.index.calls).toBe(1)
      expect(res.map((r) => r.headers['x-cache'])).toContain('shared')
    } finally {
      await other.close()
    }
  })

  it('a failed computation answers 500 and frees the lock: the next request computes', async () => {
    h.index.failNext = 1
    const r1 = await h.app.inject(`/v1/circles/${A}`)
    expect(r1.statusCode).toBe(500)
    expect(r1.json().message).toBe('internal error')
    expect(await h.t.redis.keys(`${h.t.schema.prefix}circle-lock:*`)).toEqual([])
    const t0 = Date.now()
    const r2 = await h.app.inject(`/v1/circles/${A}`)
    expect(r2.statusCode).toBe(200)
    expect(Date.now() - t0).toBeLessThan(2000)
  })

  it('a stale lock left by a crashed computation delays, never locks out', async () => {
    const lockMs = 300
    const h2 = await startHarness({ CIRCLE_LOCK_MS: String(lockMs) })
    try {
      await seed(h2)
      const { variantOf, parseRings, parseWeights, parseWindow } = await import('../src/params.js')
      const v = variantOf({
        window: parseWindow('48h'),
        direction: 'both',
        weights: parseWeights(undefined, false),
        rings: parseRings(undefined),
      })
      await h2.t.redis.set(h2.t.schema.circleLock(A, v), 'dead-process', 'PX', lockMs)
      const t0 = Date.now()
      const r = await h2.app.inject(`/v1/circles/${A}`)
      expect(r.statusCode).toBe(200)
      expect(Date.now() - t0).toBeLessThan(lockMs + 1000)
      expect(members(r.json())).toHaveLength(30)
    } finally {
      await h2.close()
    }
  })

  it('draws SVG with avatars and initials, and a real PNG', async () => {
    const svg = await h.app.inject(`/v1/circles/${A}.svg`)
    expect(svg.statusCode).toBe(200)
    expect(svg.headers['content-type']).toContain('image/svg+xml')
    expect(svg.body).toContain('<svg')
    expect(svg.body).toContain('data:image/png;base64,')
    expect(svg.body).toContain('>P1</text>') // initials of p1.test, which has no avatar
    const png = await h.app.inject(`/v1/circles/${A}.png`)
    expect(png.statusCode).toBe(200)
    expect(png.rawPayload.subarray(0, 8)).toEqual(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    )
    expect(png.rawPayload.length).toBeGreaterThan(5000)
    const again = await h.app.inject(`/v1/circles/${A}.png`)
    expect(again.headers['x-cache']).toBe('hit')
  })

  it('fetches avatars only from allowed hosts', async () => {
    const p1 = did(101)
    h.appview.profiles.set(p1, {
      did: p1,
      handle: 'p1.test',
      avatar: true,
      avatarBase: h.appview.url.replace('127.0.0.1', 'localhost'),
    })
    const svg = (await h.app.inject(`/v1/circles/${A}.svg?rings=30`)).body
    expect(svg).toContain('<title>p1.test</title>')
    // p1's avatar is on a host that is neither the AppView's nor in AVATAR_HOSTS: initials instead.
    expect(svg).toMatch(/<title>p1\.test<\/title><circle[^>]*\/><text[^>]*>P1<\/text>/)
  })

  it('pages interactions with counts by kind and profiles', async () => {
    const p1 = (await h.app.inject(`/v1/interactions/${A}?limit=20`)).json()
    expect(p1.partners).toHaveLength(20)
    expect(p1.cursor).toBeDefined()
    expect(p1.partners[0]).toMatchObject({ did: did(101), sent: { like: 30 }, handle: 'p1.test' })
    const p2 = (await h.app.inject(`/v1/interactions/${A}?limit=20&cursor=${p1.cursor}`)).json()
    expect(p2.partners).toHaveLength(10)
    expect(p2.cursor).toBeUndefined()
  })

  it('serves the scheduler stats and live pipeline figures', async () => {
    expect((await h.app.inject('/v1/stats')).statusCode).toBe(503)
    await h.t.redis.set(h.t.schema.globalStats, JSON.stringify({ interactions24h: 42 }))
    expect((await h.app.inject('/v1/stats')).json()).toEqual({ interactions24h: 42 })
    // accounts that opted out or were deleted since the scheduler ranked them leave its top lists at once
    const [X, Y, Z] = [did(901), did(902), did(903)]
    const ranked = [X, Y, Z].map((d, i) => ({ did: d, count: 9 - i }))
    await h.t.redis.set(
      h.t.schema.globalStats,
      JSON.stringify({
        top: { authors: { like: ranked, all: ranked }, subjects: { all: [ranked[1]] } },
      }),
    )
    await h.t.redis.sadd(h.t.schema.optOuts, Y)
    await h.t.redis.set(h.t.schema.accountPurged(Z), '1')
    expect((await h.app.inject('/v1/stats')).json()).toEqual({
      top: { authors: { like: [ranked[0]], all: [ranked[0]] }, subjects: { all: [] } },
    })
    await h.t.redis.srem(h.t.schema.optOuts, Y)
    await h.t.redis.set(h.t.schema.globalStats, JSON.stringify({ interactions24h: 42 }))
    await h.t.redis.hset(h.t.schema.firehoseMetrics, {
      eventsPerSecond: '1234.5',
      lagMs: '800',
      events: '99',
      state: 'streaming',
    })
    await h.t.redis.set(h.t.schema.firehoseCursor, '777')
    const live = (await h.app.inject('/v1/stats/live')).json()
    expect(live).toMatchObject({
      cursor: 777,
      rate: 1234.5,
      lagMs: 800,
      firehoseState: 'streaming',
      firehose: { events: 99 },
    })
    expect(live.firehose.state).toBeUndefined()
  })

  it('guards admin routes with the bearer token', async () => {
    expect((await h.app.inject('/admin/tracked')).statusCode).toBe(401)
    expect(
      (await h.app.inject({ url: '/admin/tracked', headers: { authorization: 'Bearer wrong' } }))
        .statusCode,
    ).toBe(403)
    const add = await h.app.inject({ method: 'PUT', url: `/admin/tracked/${A}`, headers: auth })
    expect(add.json().changed).toBe(true)
    expect(await h.t.redis.sismember(h.t.schema.tracked, A)).toBe(1)
    const bad = await h.app.inject({
      method: 'PUT',
      url: '/admin/tracked/did:plc:nope',
      headers: auth,
    })
    expect(bad.statusCode).toBe(400)
    expect((await h.app.inject({ url: '/admin/tracked', headers: auth })).json()).toEqual({
      count: 1,
      dids: [A],
    })
  })

  it('mounts the scheduler queue view behind the admin token', async () => {
    const { Redis } = await import('ioredis')
    const conn = new Redis(h.t.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    const app = await buildSecondApp(h, { queueBoard: { connection: conn } })
    try {
      const challenge = await app.inject('/admin/queues')
      expect(challenge.statusCode).toBe(401)
      expect(challenge.headers['www-authenticate']).toContain('Basic')
      const basic = `Basic ${Buffer.from(`ops:${ADMIN_TOKEN}`).toString('base64')}`
      expect(
        (await app.inject({ url: '/admin/queues', headers: { authorization: basic } })).statusCode,
      ).toBe(200)
      const wrongBasic = `Basic ${Buffer.from('ops:nope').toString('base64')}`
      expect(
        (await app.inject({ url: '/admin/queues', headers: { authorization: wrongBasic } }))
          .statusCode,
      ).toBe(403)
      const ui = await app.inject({ url: '/admin/queues', headers: auth })
      expect(ui.statusCode).toBe(200)
      expect(ui.body).toContain('<html')
      const api = await app.inject({ url: '/admin/queues/api/queues', headers: auth })
      expect(api.statusCode).toBe(200)
      // The scheduler's queues and the backfill queue.
      expect(api.json().queues.length).toBe(JOB_KINDS.length + 1)
    } finally {
      await app.close()
      conn.disconnect()
    }
  })

  it('is not ready while the indexer lags more than READY_MAX_LAG_ENTRIES', async () => {
    const h2 = await startHarness({ READY_MAX_LAG_ENTRIES: '3' })
    try {
      const { eventStream, indexerGroup } = h2.t.schema
      await h2.t.redis.xgroup('CREATE', eventStream, indexerGroup, '0', 'MKSTREAM')
      for (let i = 0; i < 5; i++) await h2.t.redis.xadd(eventStream, '*', 'e', 'x')
      const r = await h2.app.inject('/readyz')
      expect(r.statusCode).toBe(503)
      expect(r.json().reason).toContain('5 stream entries behind')
      await h2.t.redis.xreadgroup(
        'GROUP',
        indexerGroup,
        'c',
        'COUNT',
        5,
        'STREAMS',
        eventStream,
        '>',
      )
      expect((await h2.app.inject('/readyz')).statusCode).toBe(200)
      expect((await h2.app.inject('/metrics')).body).toMatch(
        /fart_pipeline\{metric="stream_length"\} 5/,
      )
      // what the indexer gave up, and cursors Redis lost, are on /metrics too
      await h2.t.redis.xadd(h2.t.schema.indexerDeadLetters, '*', 'error', 'x')
      await h2.t.redis.hset(h2.t.schema.firehoseMetrics, 'cursorsLost', '2')
      const metrics = (await h2.app.inject('/metrics')).body
      expect(metrics).toMatch(/fart_pipeline\{metric="dead_letters"\} 1/)
      expect(metrics).toMatch(/fart_pipeline\{metric="firehose_cursors_lost"\} 2/)
      expect(metrics).toMatch(/fart_pipeline\{metric="stream_trimmed_unread"\} 0/)
      // and the backfill worker's counters
      await h2.t.redis.hset(h2.t.schema.backfillStats, {
        repos: 3,
        folded: 40,
        'failed:timeout': 2,
      })
      const backfill = (await h2.app.inject('/metrics')).body
      expect(backfill).toMatch(/fart_backfill_total\{counter="repos"\} 3/)
      expect(backfill).toMatch(/fart_backfill_total\{counter="folded"\} 40/)
      expect(backfill).toMatch(/fart_backfill_failures_total\{reason="timeout"\} 2/)
    } finally {
      await h2.close()
    }
  })

  it('sends CORS and security headers: the document ones only with documents', async () => {
    for (const url of [`/v1/circles/${A}`, `/v1/circles/${A}`, '/v1/circles/bad..handle']) {
      // the second answer comes from the in-process copy, the third is an error
      const r = await h.app.inject({ url, headers: { origin: 'https://elsewhere.example' } })
      expect(r.headers['access-control-allow-origin']).toBe('*')
      expect(r.headers['x-content-type-options']).toBe('nosniff')
      expect(r.headers['strict-transport-security']).toBeDefined()
      expect(r.headers['cross-origin-resource-policy']).toBe('cross-origin')
      expect(r.headers['content-security-policy']).toBeUndefined()
      expect(r.headers['x-frame-options']).toBeUndefined()
    }
    for (const url of ['/', `/v1/circles/${A}.svg`, '/docs']) {
      const r = await h.app.inject(url)
      expect(r.statusCode, url).toBe(200)
      expect(r.headers['content-type'], url).toMatch(/text\/html|image\/svg/)
      expect(r.headers['content-security-policy'], url).toContain("script-src 'self'")
      // The pages load no image from elsewhere (/docs is swagger-ui's, with a policy of its own).
      if (url !== '/docs') {
        expect(r.headers['content-security-policy'], url).toContain("img-src 'self' data:;")
      }
      expect(r.headers['x-frame-options'], url).toBe('SAMEORIGIN')
      expect(r.headers['x-content-type-options'], url).toBe('nosniff')
    }
    const pre = await h.app.inject({
      method: 'OPTIONS',
      url: `/v1/circles/${A}`,
      headers: {
        origin: 'https://elsewhere.example',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'if-none-match',
      },
    })
    expect(pre.statusCode).toBe(204)
    expect(pre.headers['access-control-allow-origin']).toBe('*')
    expect(pre.headers['access-control-allow-methods']).toBe('GET, HEAD, PUT, DELETE, OPTIONS')
    expect(pre.headers['access-control-allow-headers']).toBe('if-none-match')
    expect(pre.headers.vary).toBe('Access-Control-Request-Headers')
    const notPreflight = await h.app.inject({ method: 'OPTIONS', url: `/v1/circles/${A}` })
    expect(notPreflight.statusCode).toBe(400)
  })

  it('allows only the configured origins when CORS_ORIGINS lists them', async () => {
    const h2 = await startHarness({ CORS_ORIGINS: 'https://a.example,https://b.example' })
    try {
      const ok = await h2.app.inject({ url: '/healthz', headers: { origin: 'https://b.example' } })
      expect(ok.headers['access-control-allow-origin']).toBe('https://b.example')
      expect(ok.headers.vary).toBe('Origin')
      const other = await h2.app.inject({
        url: '/healthz',
        headers: { origin: 'https://elsewhere.example' },
      })
      expect(other.headers['access-control-allow-origin']).toBeUndefined()
      expect(other.headers.vary).toBe('Origin')
      const pre = await h2.app.inject({
        method: 'OPTIONS',
        url: '/v1/stats',
        headers: { origin: 'https://a.example', 'access-control-request-method': 'GET' },
      })
      expect(pre.statusCode).toBe(204)
      expect(pre.headers['access-control-allow-origin']).toBe('https://a.example')
      expect(pre.headers.vary).toBe('Origin, Access-Control-Request-Headers')
    } finally {
      await h2.close()
    }
  })

  it('serves OpenAPI docs and the page', async () => {
    const spec = (await h.app.inject('/docs/json')).json()
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining([
        '/v1/circles/{actor}',
        '/v1/interactions/{actor}',
        '/v1/stats',
        '/v1/actors/suggest',
      ]),
    )
    expect((await h.app.inject('/docs')).statusCode).toBeLessThan(400)
    const page = await h.app.inject('/')
    expect(page.headers['content-type']).toContain('text/html')
    expect(page.headers['content-security-policy']).toContain("script-src 'self'")
    expect(await pageScript(h.app, '/')).toContain('/v1/circles/')
  })
})

describe('how to leave, on the page and in /docs', () => {
  const SERVICE = 'did:plc:circlesserviceaaaaaaaaaa'
  let h: Harness
  afterEach(() => h.close())

  it('names both ways: the block of SERVICE_DID and the self-label', async () => {
    h = await startHarness({ SERVICE_DID: SERVICE })
    const page = (await h.app.inject('/')).body
    expect(page).toContain(`https://bsky.app/profile/${SERVICE}`)
    expect(page).toContain('!no-unauthenticated')
    const docs = (await h.app.inject('/docs/json')).json().info.description as string
    expect(docs).toContain(SERVICE)
    expect(docs).toContain('!no-unauthenticated')
    expect(docs).toContain('403 (OptedOut)')
    // An opted-out account's page says so.
    expect(await pageScript(h.app, '/')).toContain('This account has opted out')
  })

  it('without SERVICE_DID, the label is the only way it names', async () => {
    h = await startHarness({ SERVICE_DID: '' })
    const page = (await h.app.inject('/')).body
    expect(page).not.toContain('bsky.app/profile')
    expect(page).toContain('!no-unauthenticated')
  })
})

describe('fart API without an admin token, with rate limits', () => {
  let h: Harness
  beforeEach(async () => {
    h = await startHarness({ ADMIN_TOKEN: '', RATE_LIMIT_MAX: '3' })
  })
  afterEach(() => h.close())

  it('has no admin routes and limits clients through Redis', async () => {
    expect((await h.app.inject({ url: '/admin/opt-outs', headers: auth })).statusCode).toBe(404)
    const codes: number[] = []
    for (let i = 0; i < 5; i++) codes.push((await h.app.inject('/v1/stats')).statusCode)
    expect(codes).toEqual([503, 503, 503, 429, 429])
    expect((await h.app.inject('/healthz')).statusCode).toBe(200)
    const keys = await h.t.redis.keys(`${h.t.schema.rateLimitPrefix}*`)
    expect(keys.length).toBeGreaterThan(0)
  })
})

describe('config', () => {
  it('refuses a short admin token and bad values, naming the variable', () => {
    expect(() => toConfig({ ADMIN_TOKEN: 'secret' })).toThrow(/ADMIN_TOKEN/)
    expect(() => toConfig({ PORT: 'eighty' })).toThrow(/PORT/)
    expect(() => toConfig({ CORS_ORIGINS: 'not an origin' })).toThrow(/CORS_ORIGINS/)
    const c = toConfig({})
    expect(c.host).toBe('127.0.0.1')
    expect(c.adminToken).toBeUndefined()
    expect(c.appviewUrl).toBe('https://public.api.bsky.app')
  })
})

/** The script a page loads (its name carries a content hash), fetched the way the browser does. */
async function pageScript(app: Harness['app'], path: string): Promise<string> {
  const html = (await app.inject(path)).body
  const src = /<script src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1]
  expect(src, 'the page names its script').toBeDefined()
  return (await app.inject(src as string)).body
}
