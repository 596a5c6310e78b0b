import { HOUR_MS, type InteractionCreate, type StreamEvent, tidFromMs } from '@circles/core'
import {
  createIndexReader,
  createIndexWriter,
  DID_TABLE_BUCKETS,
  didId,
  HEADER_SIZE,
  type IndexReader,
  type IndexWriter,
  type KindCounts,
  RECORD_SIZE,
} from '@circles/interaction-index'
import { clockAnchor, createTestRedis, prng, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { identityStaleKeys } from '../src/stale-caches.js'
import { canonicalExport, create, del, indexPart, plc, purge } from './helpers.js'

const ALICE = plc('alice')
const BOB = plc('bob')
const CAROL = plc('carol')
const DAVE = plc('dave')
const T0 = clockAnchor()
const ALL: KindCounts = { like: 1, repost: 1, reply: 1, quote: 1 }
const NONE: KindCounts = { like: 0, repost: 0, reply: 0, quote: 0 }

let t: TestRedis
let clock: number
let writer: IndexWriter
let reader: IndexReader

function counts(partial: Partial<KindCounts>): KindCounts {
  return { ...NONE, ...partial }
}

async function sent(did: string, windowHours = 48) {
  const list = await reader.topPartners({
    did,
    direction: 'sent',
    windowHours,
    weights: ALL,
    limit: 50,
  })
  return Object.fromEntries(list.map((p) => [p.did, p.sent]))
}

async function received(did: string, windowHours = 48) {
  const list = await reader.topPartners({
    did,
    direction: 'received',
    windowHours,
    weights: ALL,
    limit: 50,
  })
  return Object.fromEntries(list.map((p) => [p.did, p.received]))
}

beforeEach(async () => {
  t = await createTestRedis('idx')
  clock = T0 + 60_000
  writer = createIndexWriter(t.redis, t.schema, { now: () => clock })
  reader = createIndexReader(t.redis, t.schema, { now: () => clock })
})

afterEach(async () => {
  await t.cleanup()
})

describe('interaction index', () => {
  it('an identity event drops the cached profile and any cached resolution of its new handle', async () => {
    const s = t.schema
    // which caches are stale is the indexer service's decision, given to the writer
    writer = createIndexWriter(t.redis, s, { now: () => clock, staleKeysOf: identityStaleKeys(s) })
    await t.redis.set(s.profile(ALICE), JSON.stringify({ did: ALICE, handle: 'old.test' }))
    await t.redis.set(s.handleDid('new.test'), BOB) // new.test used to be Bob's
    await t.redis.set(s.handleDid('old.test'), ALICE)
    await t.redis.set(s.profile(BOB), JSON.stringify({ did: BOB, handle: 'bob.test' }))
    const stats = await writer.apply([
      { type: 'identity', did: ALICE, handle: 'New.Test', time: T0 },
    ])
    expect(stats.identities).toBe(1)
    expect(await t.redis.exists(s.profile(ALICE), s.handleDid('new.test'))).toBe(0)
    // Untouched: another account's profile, and the old handle until someone else claims it.
    expect(await t.redis.exists(s.profile(BOB), s.handleDid('old.test'))).toBe(2)
    await writer.apply([{ type: 'identity', did: CAROL, handle: 'old.test', time: T0 + 1 }])
    expect(await t.redis.exists(s.handleDid('old.test'))).toBe(0)
    // An event without a handle drops the profile only.
    await writer.apply([{ type: 'identity', did: BOB, handle: null, time: T0 + 2 }])
    expect(await t.redis.exists(s.profile(BOB))).toBe(0)
  })

  it('a writer not told which caches an identity event makes stale only counts it', async () => {
    const s = t.schema
    await t.redis.set(s.profile(ALICE), JSON.stringify({ did: ALICE, handle: 'old.test' }))
    await t.redis.set(s.handleDid('new.test'), BOB)
    const stats = await writer.apply([
      { type: 'identity', did: ALICE, handle: 'new.test', time: T0 },
      { type: 'identity', did: 'not-a-did', handle: null, time: T0 },
    ])
    expect(stats).toMatchObject({ identities: 2, invalid: 1 })
    expect(await t.redis.exists(s.profile(ALICE), s.handleDid('new.test'))).toBe(2)
  })

  it('indexes a like on both sides and finds it by URI', async () => {
    const like = create(ALICE, BOB, 'like', T0)
    const stats = await writer.apply([like])
    expect(stats.added).toBe(1)
    expect(await sent(ALICE)).toEqual({ [BOB]: counts({ like: 1 }) })
    expect(await received(BOB)).toEqual({ [ALICE]: counts({ like: 1 }) })
    expect(await sent(BOB)).toEqual({})
    expect(await reader.interaction(`at://${ALICE}/app.bsky.feed.like/${like.rkey}`)).toEqual({
      author: ALICE,
      subject: BOB,
      kinds: ['like'],
      time: Math.floor(T0 / 1000) * 1000,
      chars: 0,
    })
    expect(await reader.interaction(`at://${ALICE}/app.bsky.feed.repost/${like.rkey}`)).toBeNull()
    expect(await reader.summary(BOB, 48)).toEqual({
      sent: NONE,
      received: counts({ like: 1 }),
      partnersSent: 0,
      partnersReceived: 1,
    })
  })

  it('changes nothing when the same events are applied again', async () => {
    const events = [
      create(ALICE, BOB, 'like', T0),
      create(ALICE, CAROL, 'reply', T0 + 1000, undefined, 12),
      create(CAROL, ALICE, 'repost', T0 + 2000),
      del(ALICE, 'like', tidFromMs(T0), T0 + 3000),
    ]
    await writer.apply(events)
    const before = await canonicalExport(t.redis, t.prefix)
    const again = await writer.apply(events)
    expect(again.added).toBe(0)
    expect(await canonicalExport(t.redis, t.prefix)).toEqual(before)
    expect(await sent(ALICE)).toEqual({ [CAROL]: counts({ reply: 1 }) })
  })

  it('a delete removes exactly what its create added; unknown deletes are no-ops', async () => {
    const r1 = tidFromMs(T0)
    await writer.apply([
      create(ALICE, BOB, 'like', T0, r1),
      create(ALICE, BOB, 'like', T0 + 5, tidFromMs(T0 + 5)),
    ])
    await writer.apply([
      del(ALICE, 'like', r1, T0 + 10),
      del(ALICE, 'like', tidFromMs(T0 - 99), T0 + 11),
    ])
    await writer.apply([del(ALICE, 'repost', tidFromMs(T0 + 5), T0 + 12)])
    expect(await sent(ALICE)).toEqual({ [BOB]: counts({ like: 1 }) })
    expect(await received(BOB)).toEqual({ [ALICE]: counts({ like: 1 }) })
    // deleting again never goes negative
    await writer.apply([
      del(ALICE, 'like', r1, T0 + 13),
      del(ALICE, 'like', tidFromMs(T0 + 5), T0 + 14),
    ])
    await writer.apply([del(ALICE, 'like', tidFromMs(T0 + 5), T0 + 15)])
    expect(await sent(ALICE)).toEqual({})
    expect(await received(BOB)).toEqual({})
  })

  it('a create that arrives after its delete is not resurrected, on either side', async () => {
    const like = create(ALICE, BOB, 'like', T0)
    const stats = await writer.apply([del(ALICE, 'like', like.rkey, T0 + 10)])
    expect(stats.removed).toBe(0)
    const late = await writer.apply([like])
    expect(late.refused).toBe(1)
    expect(await sent(ALICE)).toEqual({})
    expect(await received(BOB)).toEqual({})
    // no live record on the subject side: the one phase A wrote is revoked (kept, marked, until it expires)
    const log = (await t.redis.getBuffer(t.schema.accountLog(BOB))) as Buffer
    expect(log.length).toBe(HEADER_SIZE + RECORD_SIZE)
    expect((log[HEADER_SIZE + 8] as number) & 8).toBe(8)
  })

  it('a re-like (delete + create in one commit) leaves exactly one like', async () => {
    const old = create(ALICE, BOB, 'like', T0)
    await writer.apply([old])
    const relike = [
      del(ALICE, 'like', old.rkey, T0 + 60_000),
      create(ALICE, BOB, 'like', T0 + 60_000),
    ]
    await writer.apply(relike)
    await writer.apply(relike)
    expect(await sent(ALICE)).toEqual({ [BOB]: counts({ like: 1 }) })
    expect(await received(BOB)).toEqual({ [ALICE]: counts({ like: 1 }) })
  })

  it('a post that replies and quotes counts twice and its delete removes both', async () => {
    const rkey = tidFromMs(T0)
    await writer.apply([
      create(ALICE, BOB, 'reply', T0, rkey, 40),
      create(ALICE, CAROL, 'quote', T0, rkey, 40),
    ])
    expect(await sent(ALICE)).toEqual({
      [BOB]: counts({ reply: 1 }),
      [CAROL]: counts({ quote: 1 }),
    })
    const info = await reader.interaction(`at://${ALICE}/app.bsky.feed.post/${rkey}`)
    expect(info).toMatchObject({ subject: BOB, kinds: ['reply'], chars: 40 })
    await writer.apply([del(ALICE, 'post', rkey, T0 + 1000)])
    expect(await sent(ALICE)).toEqual({})
    expect(await received(BOB)).toEqual({})
    expect(await received(CAROL)).toEqual({})
  })

  it('never indexes self-interactions or invalid identifiers', async () => {
    const stats = await writer.apply([
      create(ALICE, ALICE, 'like', T0),
      create('did:plc:short', BOB, 'like', T0),
      create(ALICE, BOB, 'like', T0, 'bad/rkey'),
    ])
    expect(stats).toMatchObject({ added: 0, invalid: 3 })
    expect(await t.redis.keys(`${t.prefix}*log*`)).toEqual([])
  })

  it('purges an account in both directions and refuses its older interactions afterwards', async () => {
    const aliceLikesBob = create(ALICE, BOB, 'like', T0)
    const carolRepostsAlice = create(CAROL, ALICE, 'repost', T0 + 1)
    await writer.apply([aliceLikesBob, carolRepostsAlice, create(CAROL, DAVE, 'like', T0 + 2)])
    await writer.apply([purge(ALICE, T0 + 100_000)])
    expect(await received(BOB)).toEqual({})
    expect(await sent(CAROL)).toEqual({ [DAVE]: counts({ like: 1 }) })
    expect(await t.redis.keys(`${t.prefix}{${ALICE}}:log*`)).toEqual([])
    // a redelivered entry from before the purge brings nothing back
    await writer.apply([aliceLikesBob, carolRepostsAlice])
    expect(await received(BOB)).toEqual({})
    expect(await sent(CAROL)).toEqual({ [DAVE]: counts({ like: 1 }) })
    expect(await sent(ALICE)).toEqual({})
    // a reactivated account's new interactions count again
    await writer.apply([create(ALICE, BOB, 'like', T0 + 200_000)])
    expect(await received(BOB)).toEqual({ [ALICE]: counts({ like: 1 }) })
  })

  it('windows, weights, direction, exclusions and limits', async () => {
    await writer.apply([
      create(ALICE, BOB, 'like', T0 - 5 * HOUR_MS),
      create(ALICE, BOB, 'like', T0 - 5 * HOUR_MS + 1),
      create(ALICE, CAROL, 'reply', T0),
      create(DAVE, ALICE, 'like', T0),
    ])
    expect(await sent(ALICE, 1)).toEqual({ [CAROL]: counts({ reply: 1 }) })
    expect(Object.keys(await sent(ALICE, 6))).toEqual([BOB, CAROL])
    const replyHeavy = await reader.topPartners({
      did: ALICE,
      direction: 'both',
      windowHours: 48,
      weights: { like: 1, repost: 1, reply: 10, quote: 1 },
      limit: 10,
    })
    expect(replyHeavy.map((p) => [p.did, p.score])).toEqual([
      [CAROL, 10],
      [BOB, 2],
      [DAVE, 1],
    ])
    expect(replyHeavy[2]?.received).toEqual(counts({ like: 1 }))
    const likesOut = await reader.topPartners({
      did: ALICE,
      direction: 'both',
      windowHours: 48,
      weights: { like: 0, repost: 1, reply: 1, quote: 1 },
      limit: 10,
      exclude: new Set([CAROL]),
    })
    expect(likesOut).toEqual([])
    const page1 = await reader.partners({ did: ALICE, windowHours: 48, limit: 2 })
    expect(page1.partners[0]?.did).toBe(BOB)
    expect(page1.partners).toHaveLength(2)
    const page2 = await reader.partners({
      did: ALICE,
      windowHours: 48,
      limit: 2,
      cursor: page1.cursor,
    })
    expect(page2.cursor).toBeUndefined()
    expect([...page1.partners, ...page2.partners].map((p) => p.did).sort()).toEqual(
      [BOB, CAROL, DAVE].sort(),
    )
  })

  it('ranks past the best partners when one of them has no DID in the table', async () => {
    // 20 partners, partner i liked 20 - i times: more than 4 x limit, so only the best few are ranked first
    const partners = Array.from({ length: 20 }, (_, i) => plc(`partner${i}`))
    await writer.apply(
      partners.flatMap((p, i) =>
        Array.from({ length: 20 - i }, (_, k) => create(ALICE, p, 'like', T0 + i * 1000 + k)),
      ),
    )
    const top = async () =>
      (
        await reader.topPartners({
          did: ALICE,
          direction: 'sent',
          windowHours: 48,
          weights: ALL,
          limit: 3,
        })
      ).map((p) => [p.did, p.score])
    expect(await top()).toEqual([
      [partners[0], 20],
      [partners[1], 19],
      [partners[2], 18],
    ])
    // the DID table has lost the two best: the reader reads again and ranks everyone
    for (const p of partners.slice(0, 2)) {
      const id = didId(p as string)
      await t.redis.hdel(t.schema.didTable(id.readUInt16BE(0) % DID_TABLE_BUCKETS), id)
    }
    reader = createIndexReader(t.redis, t.schema, { now: () => clock })
    expect(await top()).toEqual([
      [partners[2], 18],
      [partners[3], 17],
      [partners[4], 16],
    ])
  })

  it('expires with the clock: out of every window after 48 h, compacted, and old creates skipped', async () => {
    // one hour of roll-up grace: keys expire and logs compact 49 h after their hour
    writer = createIndexWriter(t.redis, t.schema, { now: () => clock, rollupGraceHours: 1 })
    await writer.apply([
      create(ALICE, BOB, 'like', T0),
      create(CAROL, BOB, 'like', T0 + 2 * HOUR_MS),
    ])
    clock = T0 + 48 * HOUR_MS + 60_000
    expect(await received(BOB)).toEqual({ [CAROL]: counts({ like: 1 }) })
    const stats = await writer.apply([create(DAVE, BOB, 'like', T0 - HOUR_MS)])
    expect(stats.expired).toBe(1)
    clock = T0 + 52 * HOUR_MS
    expect(await received(BOB)).toEqual({})
    const ttl = await t.redis.call('EXPIRETIME', t.schema.accountLog(BOB))
    expect(Number(ttl)).toBe(Math.floor((T0 + 2 * HOUR_MS) / HOUR_MS + 1) * 3600 + 49 * 3600)
    // the next write compacts the expired records away
    await writer.apply([create(DAVE, BOB, 'like', T0 + 51 * HOUR_MS)])
    const log = (await t.redis.getBuffer(t.schema.accountLog(BOB))) as Buffer
    expect(log.length).toBe(HEADER_SIZE + RECORD_SIZE)
  })

  it('spills busy accounts into hourly logs and still finds every record', async () => {
    const small = createIndexWriter(t.redis, t.schema, { now: () => clock, mainLogBytes: 100 })
    const events = Array.from({ length: 20 }, (_, i) =>
      create(ALICE, i % 2 ? BOB : CAROL, 'like', T0 - (i % 3) * HOUR_MS + i),
    )
    await small.apply(events)
    expect((await t.redis.keys(`${t.prefix}{${ALICE}}:log:*`)).length).toBe(3)
    expect(await sent(ALICE)).toEqual({
      [BOB]: counts({ like: 10 }),
      [CAROL]: counts({ like: 10 }),
    })
    const again = await small.apply(events)
    expect(again.duplicates).toBe(20)
    await small.apply(events.slice(0, 10).map((e) => del(ALICE, 'like', e.rkey, T0 + 10_000)))
    expect(await sent(ALICE)).toEqual({ [BOB]: counts({ like: 5 }), [CAROL]: counts({ like: 5 }) })
    expect(await received(BOB)).toEqual({ [ALICE]: counts({ like: 5 }) })
  })

  it('appends to big logs in place, at their exact size, with what one apply would write', async () => {
    // 400 interactions in 40 batches: Alice's main log grows past the size the script reads whole, so
    // later batches APPEND to it, until it spills
    const events = Array.from({ length: 400 }, (_, i) =>
      create(ALICE, i % 3 ? BOB : CAROL, i % 5 ? 'like' : 'repost', T0 - 2 * HOUR_MS + i * 9000),
    )
    for (let i = 0; i < events.length; i += 10) await writer.apply(events.slice(i, i + 10))
    const ref = await createTestRedis('idx-ref')
    try {
      await createIndexWriter(ref.redis, ref.schema, { now: () => clock }).apply(events)
      const expected = indexPart(await canonicalExport(ref.redis, ref.prefix), ref.prefix)
      expect(indexPart(await canonicalExport(t.redis, t.prefix), t.prefix)).toEqual(expected)
      // the appended log was reallocated at its size (APPEND alone leaves up to twice it)
      const key = t.schema.accountLog(ALICE)
      const length = await t.redis.strlen(key)
      expect(length).toBeGreaterThan(4000)
      expect(Number(await t.redis.call('MEMORY', 'USAGE', key))).toBeLessThan(length * 1.3 + 200)
      expect((await writer.apply(events)).duplicates).toBe(400)
      expect(indexPart(await canonicalExport(t.redis, t.prefix), t.prefix)).toEqual(expected)
    } finally {
      await ref.cleanup()
    }
    await writer.apply(
      events.slice(0, 30).map((e) => del(ALICE, e.kind === 'like' ? 'like' : 'repost', e.rkey, T0)),
    )
    const left = events.slice(30)
    expect(await sent(ALICE)).toEqual({
      [BOB]: counts({
        like: left.filter((e) => e.subject === BOB && e.kind === 'like').length,
        repost: left.filter((e) => e.subject === BOB && e.kind === 'repost').length,
      }),
      [CAROL]: counts({
        like: left.filter((e) => e.subject === CAROL && e.kind === 'like').length,
        repost: left.filter((e) => e.subject === CAROL && e.kind === 'repost').length,
      }),
    })
  })

  it('sections of appends write what the operation path writes, batch by batch', async () => {
    // creates among a few accounts over three hours (main logs fill and spill), with redeliveries,
    // creates that arrive after their delete, re-likes and a purge, cut into batches of uneven size
    const dids = [ALICE, BOB, CAROL, DAVE, plc('erin'), plc('frank')]
    const events: StreamEvent[] = []
    const next = prng(7)
    const rand = (n: number) => Math.floor(next() * n)
    const made: InteractionCreate[] = []
    for (let i = 0; i < 600; i++) {
      const time = T0 - 3 * HOUR_MS + i * 17_000
      const author = dids[rand(dids.length)] as string
      let subject = dids[rand(dids.length)] as string
      if (subject === author) subject = dids[(dids.indexOf(author) + 1) % dids.length] as string
      const e = create(author, subject, rand(4) === 0 ? 'repost' : 'like', time)
      made.push(e)
      events.push(e)
      const r = rand(20)
      if (r === 0) events.push(made[rand(made.length)] as InteractionCreate) // redelivered
      if (r === 1) {
        const old = made[rand(made.length)] as InteractionCreate
        events.push(del(old.author, old.kind === 'like' ? 'like' : 'repost', old.rkey, time))
        if (rand(2) === 0) events.push(old) // arrives after its delete
      }
      if (i === 450) events.push(purge(plc('frank'), time))
    }
    const ref = await createTestRedis('idx-ref')
    try {
      const fast = createIndexWriter(t.redis, t.schema, { now: () => clock, mainLogBytes: 400 })
      const slow = createIndexWriter(ref.redis, ref.schema, {
        now: () => clock,
        mainLogBytes: 400,
        appendSections: false,
      })
      for (let i = 0, size = 1; i < events.length; i += size, size = (size * 7) % 61) {
        const a = await fast.apply(events.slice(i, i + size))
        const b = await slow.apply(events.slice(i, i + size))
        expect(a).toEqual(b)
      }
      const mine = indexPart(await canonicalExport(t.redis, t.prefix), t.prefix)
      expect(Object.keys(mine).some((k) => /:log:\d+$/.test(k))).toBe(true)
      expect(mine).toEqual(indexPart(await canonicalExport(ref.redis, ref.prefix), ref.prefix))
    } finally {
      await ref.cleanup()
    }
  })

  it('scans one hour for the roll-up and lists and drops hours', async () => {
    const h = Math.floor(T0 / HOUR_MS)
    await writer.apply([
      create(ALICE, BOB, 'like', T0),
      create(ALICE, BOB, 'like', T0 + 1),
      create(ALICE, BOB, 'reply', T0 + 2),
      create(CAROL, BOB, 'like', T0 + 3),
      create(CAROL, BOB, 'like', T0 - HOUR_MS),
      del(CAROL, 'like', tidFromMs(T0 + 3), T0 + 4),
    ])
    expect(await reader.hours()).toEqual([h - 1, h])
    const rows: unknown[] = []
    await reader.scanHour(h, async (batch) => {
      rows.push(...batch)
    })
    expect(rows).toEqual(
      expect.arrayContaining([
        { author: ALICE, subject: BOB, kind: 'like', count: 2 },
        { author: ALICE, subject: BOB, kind: 'reply', count: 1 },
      ]),
    )
    expect(rows).toHaveLength(2)
    await reader.dropHour(h - 1)
    expect(await reader.hours()).toEqual([h])
  })

  it('writes again, on retry, what a failed write had marked as written', async () => {
    const h = Math.floor(T0 / HOUR_MS)
    const id = didId(BOB)
    const bucket = t.schema.didTable(id.readUInt16BE(0) % DID_TABLE_BUCKETS)
    // Keys of the wrong type make the hour list's SADD and Bob's DID table HSETNX fail in Redis itself.
    await t.redis.set(t.schema.indexHours, 'x')
    await t.redis.set(bucket, 'x')
    await expect(writer.apply([create(ALICE, BOB, 'like', T0)])).rejects.toThrow(/WRONGTYPE/)
    await t.redis.del(t.schema.indexHours, bucket)
    // The indexer retries the batch it could not acknowledge: same writer, same events.
    await writer.apply([create(ALICE, BOB, 'like', T0)])
    expect(await reader.hours()).toEqual([h])
    expect(await sent(ALICE)).toEqual({ [BOB]: counts({ like: 1 }) })
  })
})
