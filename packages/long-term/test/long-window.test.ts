import { DAY_MS } from '@circles/core'
import { didId, rememberDids } from '@circles/interaction-index'
import type { LongTermSide } from '@circles/redis-schema'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createLongWindowReader, encodeDayBlob, kindIndex, markOfHour } from '../src/index.js'

// Long windows over the backfilled sides (`bs`, `br`) against the real Redis: read over the whole window
// whatever the roll-up cursor says, even with no cursor at all (a new system whose first roll-up has not
// run), while the roll-up's sides (`s`, `r`) stay capped at the cursor's day. Blobs are written directly,
// as a backfill would (mark 0); the roll-up's own path is in services/scheduler/test/long-window.test.ts.

const NOW = Date.now()
const TODAY = Math.floor(NOW / DAY_MS)
const ME = 'did:plc:mmmmmmmmmmmmmmmmmmmmmmmm'
const P = 'did:plc:pppppppppppppppppppppppp'
const Q = 'did:web:q.example.com'
const R = 'did:plc:rrrrrrrrrrrrrrrrrrrrrrrr'
const WEIGHTS = { like: 1, repost: 2, reply: 3, quote: 4 }
type Kind = 'like' | 'repost' | 'reply' | 'quote'
const zero = () => ({ like: 0, repost: 0, reply: 0, quote: 0 })
const counts = (c: Partial<Record<Kind, number>>) => ({ ...zero(), ...c })

describe('long windows over backfilled sides', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('long-term-window')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  /** Writes one day blob of `ME`'s hash `side`: [partner, kind, count] records. */
  async function put(side: LongTermSide, day: number, recs: [string, Kind, number][], mark = 0) {
    const blob = encodeDayBlob(
      mark,
      recs.map(([did, kind, count]) => ({ kind: kindIndex(kind), partner: didId(did), count })),
    )
    await t.redis.hset(t.schema.longTerm(ME, side), String(day), blob)
  }

  it('with no roll-up cursor yet, shows the backfilled history over 7, 30 and 90 days', async () => {
    const { redis, schema } = t
    await rememberDids(redis, schema, [ME, P, Q, R])
    await put('bs', TODAY - 60, [[P, 'like', 50]])
    await put('bs', TODAY - 20, [
      [P, 'reply', 2],
      [Q, 'like', 1],
    ])
    await put('bs', TODAY - 4, [[Q, 'quote', 1]])
    await put('br', TODAY - 25, [[R, 'repost', 3]])
    await put('br', TODAY - 3, [
      [P, 'like', 4],
      [R, 'like', 1],
    ])
    // The roll-up's sides hold a day too, which no cursor vouches for: not counted.
    await put('s', TODAY - 5, [[R, 'like', 100]], markOfHour((TODAY - 5) * 24 + 7))
    expect(await redis.exists(schema.rollupCursor)).toBe(0)
    const reader = createLongWindowReader(redis, schema, { now: () => NOW })

    expect(await reader.summaryLong(ME, 7)).toEqual({
      sent: counts({ quote: 1 }),
      received: counts({ like: 5 }),
      partnersSent: 1,
      partnersReceived: 2,
    })
    expect(await reader.summaryLong(ME, 30)).toEqual({
      sent: counts({ like: 1, reply: 2, quote: 1 }),
      received: counts({ like: 5, repost: 3 }),
      partnersSent: 2,
      partnersReceived: 2,
    })
    const top90 = await reader.topPartnersLong({
      did: ME,
      direction: 'both',
      days: 90,
      weights: WEIGHTS,
      limit: 10,
    })
    expect(top90).toEqual([
      {
        did: P,
        score: 50 + 6 + 4,
        sent: counts({ like: 50, reply: 2 }),
        received: counts({ like: 4 }),
      },
      { did: R, score: 6 + 1, sent: zero(), received: counts({ like: 1, repost: 3 }) },
      { did: Q, score: 1 + 4, sent: counts({ like: 1, quote: 1 }), received: zero() },
    ])
    // One direction ranks by that side only.
    const received = await reader.topPartnersLong({
      did: ME,
      direction: 'received',
      days: 90,
      weights: WEIGHTS,
      limit: 1,
    })
    expect(received.map((p) => [p.did, p.score])).toEqual([[R, 7]])
  })

  it('adds the backfilled sides to the roll-up’s, which stay capped at the cursor’s day', async () => {
    const { redis, schema } = t
    await rememberDids(redis, schema, [ME, P, Q])
    const cursor = (TODAY - 4) * 24 + 9
    await redis.set(schema.rollupCursor, String(cursor))
    // Roll-up days: one up to the cursor's day (counted), one past it (a fold in flight: not counted).
    await put('s', TODAY - 10, [[P, 'like', 3]], markOfHour((TODAY - 10) * 24 + 23))
    await put('r', TODAY - 4, [[Q, 'reply', 1]], markOfHour(cursor))
    await put('s', TODAY - 2, [[P, 'like', 1000]], markOfHour((TODAY - 2) * 24 + 3))
    // Backfilled days before, at and after the cursor's day: all counted, added to the same partners.
    await put('bs', TODAY - 10, [[P, 'like', 2]])
    await put('br', TODAY - 4, [[Q, 'reply', 2]])
    await put('bs', TODAY - 2, [[P, 'repost', 1]])
    await put('br', TODAY - 1, [[P, 'quote', 1]])
    const reader = createLongWindowReader(redis, schema, { now: () => NOW })
    const top = await reader.topPartnersLong({
      did: ME,
      direction: 'both',
      days: 30,
      weights: WEIGHTS,
      limit: 10,
    })
    expect(top).toEqual([
      {
        did: P,
        score: 5 + 2 + 4,
        sent: counts({ like: 5, repost: 1 }),
        received: counts({ quote: 1 }),
      },
      { did: Q, score: 9, sent: zero(), received: counts({ reply: 3 }) },
    ])
    // A week: TODAY - 10 is out of it.
    expect(await reader.summaryLong(ME, 7)).toEqual({
      sent: counts({ repost: 1 }),
      received: counts({ reply: 3, quote: 1 }),
      partnersSent: 1,
      partnersReceived: 2,
    })
  })
})
