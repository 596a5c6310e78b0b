import { createBskyClient, createProfileCache } from '@circles/bsky-client'
import { createLogger } from '@circles/logging'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Circle } from '../src/circles.js'
import { createCircleService } from '../src/circles.js'
import { createLocalCache } from '../src/local-cache.js'
import { createNotifier, type Notifier } from '../src/notify.js'
import { parseRings, parseWeights, parseWindow } from '../src/params.js'
import { ADMIN_TOKEN, buildSecondApp, did, type Harness, startHarness } from './helpers.js'

// The layers in front of a circle computation: the in-process copy (and what clears it), ETags, and the
// pub/sub wake-up of requests waiting for another process's computation.

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
const A = did(1)
const log = createLogger('test:cache-layers')

function members(c: Circle): string[] {
  return c.rings.flatMap((r) => r.members.map((m) => m.did))
}

async function seed(h: Harness) {
  h.appview.profiles.set(A, { did: A, handle: 'alice.test' })
  for (let i = 1; i <= 10; i++) {
    const p = did(100 + i)
    await h.link(A, p, { like: 11 - i })
    h.appview.profiles.set(p, { did: p, handle: `p${i}.test` })
  }
}

/** Polls `check` until true; a failure is a broken mechanism, not a slow machine (5 s against 60 s). */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('in-process copies, ETags and opt-outs', () => {
  let h: Harness
  beforeEach(async () => {
    // A long in-process life: only the pub/sub announcement can make another process forget in time.
    h = await startHarness({ LOCAL_CACHE_MS: '60000' })
    await seed(h)
  })
  afterEach(() => h.close())

  it('serves the in-process copy without Redis, and another process drops it at once on an opt-out', async () => {
    const other = await buildSecondApp(h)
    try {
      const first = (await other.inject(`/v1/circles/${A}`)).json() as Circle
      const X = members(first)[0]!
      // The Redis entry gone, the other process still answers from its own copy.
      for (const k of await h.t.redis.keys(`${h.t.schema.prefix}circle:*`)) await h.t.redis.del(k)
      const copy = await other.inject(`/v1/circles/${A}`)
      expect(copy.headers['x-cache']).toBe('hit')
      expect(members(copy.json())).toContain(X)
      expect(h.index.calls).toBe(1)

      await h.app.inject({ method: 'PUT', url: `/admin/opt-outs/${X}`, headers: auth })
      await until('the other process to drop the opted-out account', async () => {
        const r = await other.inject(`/v1/circles/${A}`)
        return r.statusCode === 200 && !members(r.json()).includes(X)
      })
      expect((await other.inject(`/v1/circles/${X}`)).statusCode).toBe(403)
    } finally {
      await other.close()
    }
  })

  it('answers 304 to a matching If-None-Match, and a new ETag once the circle changed', async () => {
    const r1 = await h.app.inject(`/v1/circles/${A}`)
    const etag = r1.headers.etag as string
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/)
    expect(r1.headers['cache-control']).toBe('no-cache')
    for (const tag of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const r = await h.app.inject({ url: `/v1/circles/${A}`, headers: { 'if-none-match': tag } })
      expect(r.statusCode, tag).toBe(304)
      expect(r.body).toBe('')
      expect(r.headers.etag).toBe(etag)
    }
    // The same ETag from Redis (another process, no in-process copy) as from the copy.
    const cold = await buildSecondApp(h)
    try {
      const r = await cold.inject({ url: `/v1/circles/${A}`, headers: { 'if-none-match': etag } })
      expect(r.statusCode).toBe(304)
      expect(r.headers['x-cache']).toBe('hit')
    } finally {
      await cold.close()
    }
    const other = await h.app.inject({
      url: `/v1/circles/${A}`,
      headers: { 'if-none-match': '"not-this-one"' },
    })
    expect(other.statusCode).toBe(200)
    expect(other.body).toBe(r1.body)
    // An opt-out changes the circle: the old ETag no longer matches.
    const X = members(r1.json())[0]!
    await h.app.inject({ method: 'PUT', url: `/admin/opt-outs/${X}`, headers: auth })
    const after = await h.app.inject({
      url: `/v1/circles/${A}`,
      headers: { 'if-none-match': etag },
    })
    expect(after.statusCode).toBe(200)
    expect(after.headers.etag).not.toBe(etag)
    expect(members(after.json())).not.toContain(X)
  })

  it('a hot copy, confirmed in the background, still leaves at once when purged or replaced', async () => {
    // Requests every 20 ms keep the copy hot, so it is confirmed (not left to expire): only the check
    // against Redis can drop it before its 60 s hard age.
    const h2 = await startHarness({ LOCAL_CACHE_MS: '200' })
    try {
      await seed(h2)
      expect((await h2.app.inject(`/v1/circles/${A}`)).statusCode).toBe(200)
      const B = did(101)
      expect((await h2.app.inject(`/v1/circles/${B}`)).statusCode).toBe(200)
      expect(h2.index.calls).toBe(2)
      // A new computation in Redis (another ETag): the copy is dropped and the new circle served.
      const [key] = await h2.t.redis.keys(`${h2.t.schema.prefix}circle:{${B}}:*`)
      await h2.t.redis.del(key!)
      await until('the replaced copy to go', async () => {
        await h2.app.inject(`/v1/circles/${B}`)
        return h2.index.calls === 3
      })
      await h2.writer.purge(A, Date.now())
      await until('the purged copy to go', async () => {
        return (await h2.app.inject(`/v1/circles/${A}`)).statusCode === 404
      })
    } finally {
      await h2.close()
    }
  })
})

describe('local cache', () => {
  const copy = (n: number, etag = '"e"') => ({
    did: A,
    variant: 'ab',
    body: Buffer.alloc(n),
    etag,
    mark: 'p',
  })

  it('expires entries, keeps within its bounds, and refuses a copy read before a clear', () => {
    let t = 0
    const c = createLocalCache({ ttlMs: 100, maxEntries: 3, maxBytes: 10, now: () => t })
    c.set('a', copy(2, '"a"'), c.generation)
    expect(c.get('a')?.etag).toBe('"a"')
    t = 100
    expect(c.get('a')).toBeUndefined()
    for (const k of ['k1', 'k2', 'k3', 'k4']) c.set(k, copy(1), c.generation)
    expect(c.size).toBe(3)
    expect(c.get('k1')).toBeUndefined()
    c.set('big', copy(9), c.generation)
    expect(c.get('big')).toBeDefined()
    // 3 + 9 bytes are over 10: the oldest went until 1 + 9 were left.
    expect(c.get('k3')).toBeUndefined()
    expect(c.get('k4')).toBeDefined()
    c.set('huge', copy(11), c.generation)
    expect(c.get('huge')).toBeUndefined()
    // A request that read Redis before an opt-out change (the clear) must not put its answer back.
    const before = c.generation
    c.clear()
    c.set('stale', copy(1), before)
    expect(c.get('stale')).toBeUndefined()
    c.set('fresh', copy(1), c.generation)
    expect(c.get('fresh')).toBeDefined()
  })

  it('marks served entries, and never serves one past its hard age even when confirmed', () => {
    let t = 0
    const c = createLocalCache({ ttlMs: 100, maxAgeMs: 250, now: () => t })
    c.set('u', copy(1), c.generation)
    c.set('v', copy(1), c.generation)
    expect(c.entries().map(([, e]) => e.used)).toEqual([false, false])
    c.get('u')
    expect(
      c
        .entries()
        .filter(([, e]) => e.used)
        .map(([k]) => k),
    ).toEqual(['u'])
    // Confirmed again and again (as the background check does), still gone at its hard age.
    for (t = 50; t < 250; t += 50) c.get('u')!.until = t + 100
    t = 250
    expect(c.get('u')).toBeUndefined()
    expect(c.entries()).toEqual([]) // 'v' expired at 100 and is dropped on the way
  })

  it('keeps nothing when disabled (LOCAL_CACHE_MS=0)', () => {
    const c = createLocalCache({ ttlMs: 0 })
    c.set('a', copy(1), c.generation)
    expect(c.get('a')).toBeUndefined()
  })
})

describe('single-flight across processes, woken by pub/sub', () => {
  let h: Harness
  const notifiers: Notifier[] = []
  beforeEach(async () => {
    h = await startHarness()
    await seed(h)
  })
  afterEach(async () => {
    for (const n of notifiers.splice(0)) await n.close()
    await h.close()
  })

  /** A circle service as in another process: its own notifier, and a poll far too slow to matter. */
  // (each test below fails by its 20 s timeout if a waiter is not woken)
  async function process() {
    const notifier = await createNotifier({ redis: h.t.redis, schema: h.t.schema, log })
    notifiers.push(notifier)
    return createCircleService({
      redis: h.t.redis,
      schema: h.t.schema,
      index: h.index,
      profiles: createProfileCache({
        redis: h.t.redis,
        schema: h.t.schema,
        client: createBskyClient({ appviewUrl: h.appview.url }),
      }),
      ttlSeconds: 60,
      partialTtlSeconds: 10,
      // Neither the lock's expiry nor the poll comes before the test's timeout: only a notification can.
      lockMs: 1_200_000,
      pollMs: 600_000,
      notifier,
      log,
    })
  }
  const params = {
    window: parseWindow('24h'),
    direction: 'both' as const,
    weights: parseWeights(undefined, false),
    rings: parseRings(undefined),
  }

  it('a waiter gets the result as soon as it is written', async () => {
    const [p1, p2] = [await process(), await process()]
    h.index.delayMs = 300
    const first = p1.get(A, params)
    // p2 asks once p1 holds the lock: it has to wait for p1's computation.
    await until(
      'p1 to take the lock',
      async () => (await h.t.redis.keys(`${h.t.schema.prefix}circle-lock:*`)).length > 0,
    )
    const second = await p2.get(A, params)
    expect(second.cache).toBe('shared')
    expect(second.body.equals((await first).body)).toBe(true)
    expect(h.index.calls).toBe(1)
  }, 20_000)

  it('a waiter takes over at once when the computation failed', async () => {
    const [p1, p2] = [await process(), await process()]
    h.index.delayMs = 300
    h.index.failNext = 1
    const first = p1.get(A, params).catch((err: unknown) => err)
    await until(
      'p1 to take the lock',
      async () => (await h.t.redis.keys(`${h.t.schema.prefix}circle-lock:*`)).length > 0,
    )
    const second = await p2.get(A, params)
    expect(await first).toBeInstanceOf(Error)
    expect(second.status).toBe(200)
    expect(second.cache).toBe('miss')
    expect(h.index.calls).toBe(2)
  }, 20_000)
})
