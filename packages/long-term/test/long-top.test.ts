import { DAY_MS, HOUR_MS, type StreamEvent, tidFromMs } from '@circles/core'
import {
  createIndexReader,
  createIndexWriter,
  didId,
  type Partner,
  rememberDids,
} from '@circles/interaction-index'
import { LONG_TERM_SIDES } from '@circles/redis-schema'
import { createTestRedis, didOf, prng, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createLongWindowReader,
  encodeDayBlob,
  kindIndex,
  markOfHour,
  readLongTerm,
  SIDE_DIRECTION,
} from '../src/index.js'

// The long windows' one-pass top (the live aggregate plus every day blob, summed by id, only the best
// resolved) against the way they were read before: the live reader's list paged through (a small page, so
// there are many), each side's day blobs summed and resolved, merged by DID, every partner ranked by score,
// total, DID. Random data with many ties (a small pool, small counts), ids missing from the DID table,
// exclusions, every direction, zero weights.

const NOW = Date.now()
const TODAY = Math.floor(NOW / DAY_MS)
const CURRENT = Math.floor(NOW / HOUR_MS)
const KINDS = ['like', 'repost', 'reply', 'quote'] as const
type Counts = Record<(typeof KINDS)[number], number>
const zero = (): Counts => ({ like: 0, repost: 0, reply: 0, quote: 0 })
const sum = (c: Counts) => c.like + c.repost + c.reply + c.quote

describe('long windows: the one-pass top', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('long-top')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  /** The top as it was computed before: paged live list + resolved day blobs, merged by DID, sorted. */
  async function reference(
    me: string,
    q: { days: number; direction: 'sent' | 'received' | 'both'; weights: Counts; limit: number },
    exclude: Set<string>,
    rolledTo: number,
  ): Promise<Partner[]> {
    const { redis, schema } = t
    const all = new Map<string, { sent: Counts; received: Counts }>()
    const entry = (d: string) => {
      let e = all.get(d)
      if (!e) {
        e = { sent: zero(), received: zero() }
        all.set(d, e)
      }
      return e
    }
    const reader = createIndexReader(redis, schema, { now: () => NOW })
    let cursor: string | undefined
    do {
      const page = await reader.partners({ did: me, windowHours: 48, limit: 7, cursor })
      for (const p of page.partners) {
        const e = entry(p.did)
        for (const k of KINDS) {
          e.sent[k] += p.sent[k]
          e.received[k] += p.received[k]
        }
      }
      cursor = page.cursor
    } while (cursor !== undefined)
    const fromDay = Math.floor((NOW - q.days * DAY_MS) / DAY_MS)
    for (const side of LONG_TERM_SIDES) {
      const toDay = side === 's' || side === 'r' ? rolledTo : TODAY
      const got = await readLongTerm(redis, schema, schema.longTerm(me, side), fromDay, toDay)
      for (const [d, c] of got) {
        const into = entry(d)[SIDE_DIRECTION[side]]
        for (const k of KINDS) into[k] += c[k]
      }
    }
    const ranked: Partner[] = []
    for (const [d, c] of all) {
      if (exclude.has(d)) continue
      let score = 0
      for (const k of KINDS) {
        score +=
          q.weights[k] *
          ((q.direction !== 'received' ? c.sent[k] : 0) +
            (q.direction !== 'sent' ? c.received[k] : 0))
      }
      if (score > 0) ranked.push({ did: d, score, sent: c.sent, received: c.received })
    }
    ranked.sort(
      (x, y) =>
        y.score - x.score ||
        sum(y.sent) + sum(y.received) - (sum(x.sent) + sum(x.received)) ||
        (x.did < y.did ? -1 : 1),
    )
    return ranked.slice(0, q.limit)
  }

  it('ranks what the paged read ranked, on random data with ties, unknown ids and exclusions', async () => {
    const { redis, schema } = t
    const r = prng(20)
    const pool = Array.from({ length: 90 }, (_, i) => didOf(1000 + i))
    const me = didOf(7)
    const known = [me, ...pool.filter((_, i) => i % 9 !== 4)]
    await rememberDids(redis, schema, known)
    const pick = () => pool[Math.floor(r() * pool.length)] as string
    const kind = () => KINDS[Math.floor(r() * 4)] as (typeof KINDS)[number]
    // The live window: 600 interactions over the last 47 hours, both ways.
    const events: StreamEvent[] = []
    for (let j = 0; j < 600; j++) {
      const time = (CURRENT - Math.floor(r() * 47)) * HOUR_MS + j * 1000
      const other = pick()
      const [author, subject] = r() < 0.5 ? [me, other] : [other, me]
      events.push({
        type: 'create',
        kind: kind(),
        author,
        subject,
        rkey: tidFromMs(time, j),
        time,
        chars: 0,
      })
    }
    await createIndexWriter(redis, schema).apply(events)
    // Day blobs on every side over 100 days, some past the window, some past the roll-up cursor.
    const rolledTo = TODAY - 3
    await redis.set(schema.rollupCursor, String(rolledTo * 24 + 23))
    for (const side of LONG_TERM_SIDES) {
      for (let day = TODAY - 100; day <= TODAY; day++) {
        if (r() < 0.4) continue
        const recs = Array.from({ length: 1 + Math.floor(r() * 12) }, () => ({
          kind: kindIndex(kind()),
          partner: didId(pick()),
          count: r() < 0.05 ? 64 + Math.floor(r() * 300) : 1 + Math.floor(r() * 3),
        }))
        const mark = side === 's' || side === 'r' ? markOfHour(day * 24 + 23) : 0
        await redis.hset(schema.longTerm(me, side), String(day), encodeDayBlob(mark, recs))
      }
    }
    const reader = createLongWindowReader(redis, schema, { now: () => NOW })
    let compared = 0
    for (let round = 0; round < 60; round++) {
      const weights = { like: 0, repost: 0, reply: 0, quote: 0 }
      for (const k of KINDS)
        weights[k] = r() < 0.25 ? 0 : Math.floor(r() * 4) + (r() < 0.3 ? 0.5 : 0)
      if (sum(weights) === 0) weights.like = 1
      const direction = (['sent', 'received', 'both'] as const)[round % 3] as 'sent'
      const days = [7, 30, 90][Math.floor(r() * 3)] as number
      const limit = 1 + Math.floor(r() * 30)
      const exclude = new Set(Array.from({ length: Math.floor(r() * 4) }, pick))
      const q = { did: me, direction, days, weights, limit, exclude }
      const want = await reference(me, q, exclude, rolledTo)
      expect(await reader.topPartnersLong(q)).toEqual(want)
      compared += want.length
    }
    // The data gave the comparison something to rank: many partners per query.
    expect(compared).toBeGreaterThan(60 * 10)
  })
})
