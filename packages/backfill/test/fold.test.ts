import { DAY_MS, HOUR_MS } from '@circles/core'
import {
  createIndexReader,
  createIndexWriter,
  didId,
  type IndexWriter,
} from '@circles/interaction-index'
import { encodeDayBlob, isCompactDayBlob, readLongTerm } from '@circles/long-term'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { BackfillRefused, type FoldDeps, foldRepo } from '../src/fold.js'
import { like, quote, reply, repost } from './records.js'

const A = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
const B = 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb'
const C = 'did:plc:cccccccccccccccccccccccc'
const D = 'did:plc:dddddddddddddddddddddddd'

let tr: TestRedis
let writer: IndexWriter
let deps: FoldDeps
const now = Date.now()

beforeEach(async () => {
  tr = await createTestRedis('backfill-fold')
  writer = createIndexWriter(tr.redis, tr.schema)
  deps = { redis: tr.redis, schema: tr.schema, writer }
})
afterEach(async () => {
  await writer.close()
  await tr.cleanup()
})

const days = (n: number) => Math.floor((now - n * DAY_MS) / DAY_MS)

async function longTerm(did: string, side: 'bs' | 'br') {
  return readLongTerm(tr.redis, tr.schema, tr.schema.longTerm(did, side), days(90), days(0))
}

async function liveSummary(did: string) {
  return createIndexReader(tr.redis, tr.schema).summary(did, 48)
}

describe('foldRepo: the day blobs', () => {
  const history = [
    like(B, now - 3 * DAY_MS),
    like(B, now - 3 * DAY_MS),
    repost(B, now - 10 * DAY_MS),
    reply(C, now - 20 * DAY_MS),
    quote(C, now - 20 * DAY_MS),
  ]

  it('writes both directions, and a rerun (after a kill, or twice at once) leaves the same bytes', async () => {
    await foldRepo(deps, A, history)
    expect(await longTerm(A, 'bs')).toEqual(
      new Map([
        [B, { like: 2, repost: 1, reply: 0, quote: 0 }],
        [C, { like: 0, repost: 0, reply: 1, quote: 1 }],
      ]),
    )
    expect(await longTerm(B, 'br')).toEqual(
      new Map([[A, { like: 2, repost: 1, reply: 0, quote: 0 }]]),
    )
    const keys = [A, B, C].flatMap((d) => [
      tr.schema.longTerm(d, 'bs'),
      tr.schema.longTerm(d, 'br'),
    ])
    const dump = async () => Promise.all(keys.map((k) => tr.redis.hgetallBuffer(k)))
    const first = await dump()
    await Promise.all([foldRepo(deps, A, history), foldRepo(deps, A, history)])
    expect(await dump()).toEqual(first)
    // the keys expire with their newest day + the retention, as the roll-up's do
    const ttl = await tr.redis.pexpiretime(tr.schema.longTerm(B, 'br'))
    expect(ttl).toBe((days(3) + 91) * DAY_MS)
  })

  it('writes `br` blobs plain, and refuses to edit a compact one rather than misread it', async () => {
    await foldRepo(deps, A, history)
    const br = await tr.redis.hgetBuffer(tr.schema.longTerm(B, 'br'), String(days(3)))
    expect(br && !isCompactDayBlob(br)).toBe(true)
    // A compact blob where the script expects plain ones (nothing writes one there): an error, no write
    const compact = encodeDayBlob(0, [{ kind: 0, partner: didId(D), count: 1 }])
    await tr.redis.hset(tr.schema.longTerm(B, 'br'), String(days(5)), compact)
    await expect(foldRepo(deps, A, history)).rejects.toThrow(/COMPACT/)
    expect(await tr.redis.hgetBuffer(tr.schema.longTerm(B, 'br'), String(days(5)))).toEqual(compact)
  })

  it('keeps other sources in a partner blob, and strips a partner the repo no longer names', async () => {
    await foldRepo(deps, A, history)
    await foldRepo(deps, D, [like(C, now - 20 * DAY_MS)])
    // A deleted its records about C: C's received keeps D's and loses A's
    await foldRepo(deps, A, history.slice(0, 3))
    expect(await longTerm(C, 'br')).toEqual(
      new Map([[D, { like: 1, repost: 0, reply: 0, quote: 0 }]]),
    )
    expect((await longTerm(A, 'bs')).has(C)).toBe(false)
    expect(await longTerm(B, 'br')).toEqual(
      new Map([[A, { like: 2, repost: 1, reply: 0, quote: 0 }]]),
    )
  })

  it('gives each day it writes a new token, which outlives the blobs', async () => {
    const tokens = (d: string) => tr.redis.hgetall(tr.schema.longTermVersion(d))
    const lengths = (d: string, side: 'bs' | 'br') =>
      tr.redis.hstrlen(tr.schema.longTerm(d, side), String(days(3)))
    await foldRepo(deps, A, history)
    const before = {
      a: await tokens(A),
      b: await tokens(B),
      // `bs` is compact, `br` plain (its script edits plain records): two lengths
      len: await lengths(A, 'bs'),
      lenB: await lengths(B, 'br'),
    }
    expect(Object.keys(before.a).sort()).toEqual([days(20), days(10), days(3)].map(String))
    expect(Object.keys(before.b).sort()).toEqual([days(10), days(3)].map(String))
    // A third like of B that day: the same bytes but one count, so the same lengths; new tokens.
    await foldRepo(deps, A, [...history, like(B, now - 3 * DAY_MS + 1000)])
    expect(await lengths(A, 'bs')).toBe(before.len)
    expect(await lengths(B, 'br')).toBe(before.lenB)
    const after = { a: await tokens(A), b: await tokens(B) }
    expect(after.a[days(3)]).not.toBe(before.a[days(3)])
    expect(after.b[days(3)]).not.toBe(before.b[days(3)])
    for (const d of [A, B]) {
      const side = d === A ? 'bs' : 'br'
      const blobs = await tr.redis.pexpiretime(tr.schema.longTerm(d, side))
      expect(await tr.redis.pexpiretime(tr.schema.longTermVersion(d))).toBeGreaterThanOrEqual(blobs)
    }
    // A partner only stripped (A no longer names C): its blobs shrink, which tells; no token is set.
    const c = await tokens(C)
    await foldRepo(deps, A, history.slice(0, 3))
    expect(await tr.redis.exists(tr.schema.longTerm(C, 'br'))).toBe(0)
    expect(await tokens(C)).toEqual(c)
  })

  it('leaves out hidden partners, refuses a hidden account, and skips what the stream covered', async () => {
    await tr.redis.sadd(tr.schema.optOuts, C)
    const r = await foldRepo(deps, A, history)
    expect(r.hiddenPartners).toBe(2)
    expect((await longTerm(A, 'bs')).has(C)).toBe(false)
    expect(await tr.redis.exists(tr.schema.longTerm(C, 'br'))).toBe(0)
    await expect(foldRepo(deps, C, [like(A, now - 3 * DAY_MS)])).rejects.toBeInstanceOf(
      BackfillRefused,
    )
    expect(await tr.redis.exists(tr.schema.longTerm(C, 'bs'))).toBe(0)

    await tr.redis.set(tr.schema.liveSince, now - 5 * DAY_MS)
    const covered = await foldRepo(deps, D, [like(B, now - 3 * DAY_MS), like(B, now - 6 * DAY_MS)])
    expect(covered.liveCovered).toBe(1)
    expect((await longTerm(D, 'bs')).get(B)?.like).toBe(1)
  })
  it('packs counts past a head byte and every kind of a day into one partner call', async () => {
    // 70 likes (a varint count), a repost, a reply and a quote the same day, and other days around it
    const t = now - 30 * DAY_MS
    const many = Array.from({ length: 70 }, (_, i) => like(B, t + i * 1000))
    const mixed = [...many, repost(B, t), reply(B, t), quote(B, t), like(B, now - 60 * DAY_MS)]
    await foldRepo(deps, A, mixed)
    await foldRepo(deps, D, [like(B, t), like(B, now - 4 * DAY_MS)])
    await foldRepo(deps, A, mixed)
    expect(await longTerm(B, 'br')).toEqual(
      new Map([
        [A, { like: 71, repost: 1, reply: 1, quote: 1 }],
        [D, { like: 2, repost: 0, reply: 0, quote: 0 }],
      ]),
    )
    expect(await longTerm(A, 'bs')).toEqual(
      new Map([[B, { like: 71, repost: 1, reply: 1, quote: 1 }]]),
    )
    const ttl = await tr.redis.pexpiretime(tr.schema.longTerm(B, 'br'))
    expect(ttl).toBe((days(4) + 91) * DAY_MS)
  })
})

describe('foldRepo: the live index', () => {
  it('counts a record the stream also delivered once, and never brings back one it saw deleted', async () => {
    const seen = like(B, now - HOUR_MS)
    const deleted = like(C, now - 2 * HOUR_MS)
    const ev = (r: typeof seen, subject: string) => ({
      type: 'create' as const,
      kind: 'like' as const,
      author: A,
      subject,
      rkey: r.rkey,
      time: Date.parse((r.record as { createdAt: string }).createdAt),
      chars: 0,
    })
    // the stream: both created, one deleted, before the backfill fetched the repo
    await writer.apply([ev(seen, B), ev(deleted, C)])
    await writer.apply([
      { type: 'delete', record: 'like', author: A, rkey: deleted.rkey, time: now },
    ])
    const fresh = reply(B, now - 3 * HOUR_MS)
    const r = await foldRepo(deps, A, [seen, deleted, fresh])
    expect(r.liveEvents).toBe(3)
    const s = await liveSummary(A)
    expect(s.sent).toEqual({ like: 1, repost: 0, reply: 1, quote: 0 })
    await foldRepo(deps, A, [seen, deleted, fresh])
    expect((await liveSummary(A)).sent).toEqual(s.sent)
    expect((await liveSummary(B)).received).toEqual({ like: 1, repost: 0, reply: 1, quote: 0 })
  })

  it('does not bring back a record whose create the stream never showed but whose delete it did', async () => {
    // created before the live stream began, deleted after; the backfill read the repo before the delete
    const stale = repost(C, now - 5 * HOUR_MS)
    await writer.apply([
      { type: 'delete', record: 'repost', author: A, rkey: stale.rkey, time: now },
    ])
    await foldRepo(deps, A, [stale])
    expect((await liveSummary(A)).sent).toEqual({ like: 0, repost: 0, reply: 0, quote: 0 })
    expect((await liveSummary(C)).received).toEqual({ like: 0, repost: 0, reply: 0, quote: 0 })
  })
})
