import { createBskyClient, createProfileCache } from '@circles/bsky-client'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { indexerRate } from '../src/routes/stats.js'
import { statsProfiles } from '../src/stats-privacy.js'
import { did, type Harness, startHarness } from './helpers.js'

// /v1/stats names the accounts of its top lists from the profile cache (the AppView only in the background, for
// the next request), and leaves out those that opted out since the scheduler ranked them; /v1/stats/live sums the indexer consumers' rates.

describe('/v1/stats top lists', () => {
  let h: Harness
  beforeEach(async () => {
    h = await startHarness()
  })
  afterEach(() => h.close())

  it('adds cached profile fields, fetches the others after answering, and drops an opted-out account', async () => {
    const [X, Y, Z] = [did(901), did(902), did(903)]
    // X is cached (as a circle's lookup would have left it), Y is too but opts out, Z is not cached.
    const cache = createProfileCache({
      redis: h.t.redis,
      schema: h.t.schema,
      client: createBskyClient({ appviewUrl: h.appview.url }),
    })
    await cache.put([
      { did: X, handle: 'x.test', displayName: 'Ex', avatar: 'https://cdn.example/x.jpg' },
      { did: Y, handle: 'y.test' },
    ])
    h.appview.profiles.set(Z, { did: Z, handle: 'z.test' })
    const ranked = [X, Y, Z].map((d, i) => ({ did: d, count: 9 - i }))
    await h.t.redis.set(
      h.t.schema.globalStats,
      JSON.stringify({
        hours: [],
        top: {
          authors: { like: ranked, all: ranked },
          subjects: { reply: [ranked[1], ranked[2]] },
        },
      }),
    )
    await h.t.redis.sadd(h.t.schema.optOuts, Y)
    const calls = h.appview.calls.length
    const res = await h.app.inject('/v1/stats')
    expect(res.statusCode).toBe(200)
    const x = {
      did: X,
      count: 9,
      handle: 'x.test',
      displayName: 'Ex',
      avatar: 'https://cdn.example/x.jpg',
    }
    const z = { did: Z, count: 7 }
    expect(res.json().top).toEqual({
      authors: { like: [x, z], all: [x, z] },
      subjects: { reply: [z] },
    })
    expect(res.body).not.toContain(Y)
    // Z's profile is asked for after the answer, once, and alone; a later request names it.
    let named: { handle?: string } | undefined
    for (let i = 0; i < 50 && !named?.handle; i++) {
      await new Promise((r) => setTimeout(r, 20))
      named = (await h.app.inject('/v1/stats')).json().top.subjects.reply[0]
    }
    expect(named).toEqual({ did: Z, count: 7, handle: 'z.test' })
    const asked = h.appview.calls.slice(calls)
    expect(asked.map((c) => c.params.getAll('actors'))).toEqual([[Z]])
  })
})

describe('indexerRate', () => {
  it('sums the consumers seen within the last minute, null when none is', () => {
    const now = Date.now()
    const hash = {
      'rate:a': '100',
      'seen:a': String(now - 5_000),
      'rate:b': '50',
      'seen:b': String(now - 1_000),
      'rate:old': '999',
      'seen:old': String(now - 120_000),
      'rate:never': '7',
      lag: '3',
    }
    expect(indexerRate(hash, now)).toBe(150)
    expect(indexerRate({ 'rate:old': '9', 'seen:old': String(now - 120_000) }, now)).toBeNull()
    expect(indexerRate({}, now)).toBeNull()
  })
})

describe('statsProfiles', () => {
  it('peeks the same accounts once per ttl; warms a set of accounts once, then peeks again', async () => {
    let reads = 0
    let fetched: string[][] = []
    let fail = false
    const empty = { profiles: new Map(), missing: new Set<string>(), complete: true }
    const inner = {
      peek: async () => {
        reads++
        if (fail) throw new Error('redis down (test)')
        return empty
      },
      get: async (dids: readonly string[]) => {
        fetched.push([...dids])
        return empty
      },
    }
    let now = 1_000
    const p = statsProfiles(inner, 30_000, () => now)
    await p.peek([did(1), did(2)])
    await p.peek([did(1), did(2)])
    expect(reads).toBe(1)
    await p.peek([did(1)])
    expect(reads).toBe(2)
    now += 30_000
    await p.peek([did(1)])
    expect(reads).toBe(3)
    fail = true
    now += 30_000
    await expect(p.peek([did(1)])).rejects.toThrow('redis down')
    fail = false
    await p.peek([did(1)])
    expect(reads).toBe(5)
    p.warm([did(1)])
    p.warm([did(1)])
    await new Promise((r) => setTimeout(r, 0))
    expect(fetched).toEqual([[did(1)]])
    // The warmed profiles are read at the next peek, within the ttl.
    await p.peek([did(1)])
    expect(reads).toBe(6)
    fetched = []
    p.warm([did(1), did(2)])
    expect(fetched).toEqual([[did(1), did(2)]])
  })
})
