import { trimProfileNames } from '@circles/bsky-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { did, type Harness, startHarness } from './helpers.js'

// GET /v1/actors/suggest against the real Redis: profiles come into the cache (and the name index beside it)
// the way they do in service, through a circle request; then prefixes of handles and display names, the
// hidden accounts left out, stale members dropped, bad queries 400, and the route rate limited.

const A = did(1)
const OPTED = did(2)
const GONE = did(3)
const MOVED = did(4)

describe('GET /v1/actors/suggest', () => {
  let h: Harness
  beforeAll(async () => {
    h = await startHarness()
    h.appview.profiles.set(A, { did: A, handle: 'alice.test', displayName: 'Ålice Anders' })
    const partners: [string, string, string?][] = [
      [OPTED, 'alfred.test', 'Alfred'],
      [GONE, 'alma.test'],
      [MOVED, 'alex.test', 'Zed'],
    ]
    for (const [d, handle, displayName] of partners) {
      h.appview.profiles.set(d, { did: d, handle, displayName })
      await h.link(A, d, { reply: 2 })
    }
    // The circle request caches all four profiles, which indexes their names.
    expect((await h.app.inject(`/v1/circles/${A}`)).statusCode).toBe(200)
  })
  afterAll(() => h?.close())

  const ask = async (q: string, extra = '') => {
    const r = await h.app.inject(`/v1/actors/suggest?q=${encodeURIComponent(q)}${extra}`)
    return { status: r.statusCode, body: r.json() }
  }
  const handles = async (q: string) =>
    ((await ask(q)).body.actors as { handle: string }[]).map((a) => a.handle)

  it('answers handles by prefix, then display names (case and accents folded as stored)', async () => {
    expect(await handles('al')).toEqual(['alex.test', 'alfred.test', 'alice.test', 'alma.test'])
    expect(await handles('@ALI')).toEqual(['alice.test'])
    expect(await handles('ålice a')).toEqual(['alice.test'])
    expect(await handles('zed')).toEqual(['alex.test'])
    expect(await handles('b')).toEqual([])
    const one = (await ask('alice')).body.actors[0]
    expect(one).toEqual({ did: A, handle: 'alice.test', displayName: 'Ålice Anders' })
    expect((await ask('al', '&limit=2')).body.actors).toHaveLength(2)
  })

  it('leaves out opted-out and deleted accounts, and drops members whose profile moved on', async () => {
    await h.t.redis.sadd(h.t.schema.optOuts, OPTED)
    await h.t.redis.set(h.t.schema.accountPurged(GONE), '1')
    // An identity event: the profile is deleted, and cached again with a new handle.
    await h.t.redis.del(h.t.schema.profile(MOVED))
    h.appview.profiles.set(MOVED, { did: MOVED, handle: 'xavier.test', displayName: 'Zed' })
    expect((await h.app.inject(`/v1/circles/${A}?window=24h`)).statusCode).toBe(200)
    expect(await handles('al')).toEqual(['alice.test'])
    expect(await handles('x')).toEqual(['xavier.test'])
    // The old handle's member was dropped by the read that found it stale; the hidden ones stay (the
    // scheduler's forget step removes theirs), never shown.
    const members = await h.t.redis.zrange(h.t.schema.profileNames, 0, -1)
    expect(members.some((m) => m.startsWith('h:alex.test'))).toBe(false)
    expect(members.some((m) => m.startsWith('h:alfred.test'))).toBe(true)
    await h.t.redis.srem(h.t.schema.optOuts, OPTED)
    expect(await handles('alf')).toEqual(['alfred.test'])
    // A member that names no valid DID (never written so) is dropped, not made into a key.
    await h.t.redis.zadd(h.t.schema.profileNames, 0, 'h:alz.test\0did:nope')
    expect(await handles('alz')).toEqual([])
    expect(await h.t.redis.zscore(h.t.schema.profileNames, 'h:alz.test\0did:nope')).toBeNull()
  })

  it('answers 400 with a message for a bad q or limit', async () => {
    for (const q of ['', ' ', '@', 'a*', 'a\u0000b', '<script>', 'x'.repeat(65)]) {
      const r = await ask(q)
      expect(r.status, q).toBe(400)
      expect(r.body.message, q).toMatch(/q/)
    }
    expect((await h.app.inject('/v1/actors/suggest')).statusCode).toBe(400)
    for (const l of ['0', '21', 'x']) expect((await ask('al', `&limit=${l}`)).status, l).toBe(400)
  })

  it('keeps the index within its age and size bounds', async () => {
    const { redis, schema } = h.t
    const before = await redis.zcard(schema.profileNames)
    expect(before).toBeGreaterThan(2)
    const now = Date.now()
    // Nothing is older than a day: only the cap removes, oldest first.
    expect(
      await trimProfileNames(redis, schema, { maxAgeMs: 86_400_000, maxMembers: 2, now }),
    ).toBe(before - 2)
    expect(await redis.zcard(schema.profileNames)).toBe(2)
    expect(await redis.zcard(schema.profileNamesSeen)).toBe(2)
    // An hour later with a TTL of a minute: everything left is older than its profile could be.
    const later = now + 3_600_000
    expect(
      await trimProfileNames(redis, schema, { maxAgeMs: 60_000, maxMembers: 100, now: later }),
    ).toBe(2)
    expect(await redis.zcard(schema.profileNames)).toBe(0)
  })
})

describe('GET /v1/actors/suggest, rate limited', () => {
  let h: Harness
  beforeAll(async () => {
    h = await startHarness({ RATE_LIMIT_MAX: '2' })
  })
  afterAll(() => h?.close())

  it('answers 429 past the limit, like the other public routes', async () => {
    const codes: number[] = []
    for (let i = 0; i < 3; i++)
      codes.push((await h.app.inject('/v1/actors/suggest?q=al')).statusCode)
    expect(codes).toEqual([200, 200, 429])
  })
})
