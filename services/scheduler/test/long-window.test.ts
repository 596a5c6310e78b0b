import { DAY_MS, HOUR_MS, type StreamEvent, tidFromMs } from '@circles/core'
import { createIndexWriter, didId } from '@circles/interaction-index'
import { createLongWindowReader, encodeDayBlob, kindIndex, markOfHour } from '@circles/long-term'
import { createTestRedis, prng, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { HourRow } from '../src/live-source.js'
import { rollUpHour } from '../src/rollup.js'
import { makeDids, memoryLiveHours, newRollupFence, writeBackfilled } from './helpers.js'

// Long windows combine the live index (last 48 h) with the daily aggregates (folded hours, and backfilled
// days): checked against a brute-force sum over everything that was written to any of them.

const NOW = Date.now()
const TODAY = Math.floor(NOW / DAY_MS)
const CURRENT = Math.floor(NOW / HOUR_MS)
const WEIGHTS = { like: 1, repost: 2, reply: 3, quote: 4 }
const KINDS = ['like', 'repost', 'reply', 'quote'] as const

describe('long windows', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('sched-long')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  const dids = makeDids(40, 9)
  const me = dids[0] as string
  const r = prng(3)
  const pick = () => dids[1 + Math.floor(r() * (dids.length - 1))] as string
  const kind = () => KINDS[Math.floor(r() * 4)] as (typeof KINDS)[number]
  // Folded hours, oldest first (the roll-up goes in order): days 60, 20, 5 and 3 ago.
  const folded: [number, HourRow[]][] = [60, 20, 5, 3].map((ago, i) => {
    const rows: HourRow[] = []
    for (let j = 0; j < 30; j++) {
      const other = pick()
      const row = { author: me, subject: other, kind: kind(), count: 1 + (j % 3) }
      rows.push(j % 2 === 0 ? row : { ...row, author: other, subject: me })
    }
    return [(TODAY - ago) * 24 + 5 + i, rows]
  })
  const live: StreamEvent[] = []
  const liveRows: [number, HourRow][] = []
  for (let j = 0; j < 40; j++) {
    const hour = CURRENT - 1 - (j % 3)
    const time = hour * HOUR_MS + j * 1000
    const other = pick()
    const k = kind()
    const [author, subject] = j % 2 === 0 ? [me, other] : [other, me]
    live.push({
      type: 'create',
      kind: k,
      author,
      subject,
      rkey: tidFromMs(time, j),
      time,
      chars: 0,
    })
    liveRows.push([hour, { author, subject, kind: k, count: 1 }])
  }

  // Backfilled rows (a repo's history older than the live index), days 75, 40, 12 and 2 ago: the last is
  // past the roll-up cursor's day, which caps only the roll-up's sides.
  const backfilled: [number, HourRow][] = [75, 40, 12, 2].flatMap((ago) => {
    const out: [number, HourRow][] = []
    for (let j = 0; j < 12; j++) {
      const other = pick()
      const row = { author: me, subject: other, kind: kind(), count: 1 + (j % 4) }
      out.push([(TODAY - ago) * 24, j % 3 === 0 ? { ...row, author: other, subject: me } : row])
    }
    return out
  })

  function brute(days: number) {
    const fromDay = Math.floor((NOW - days * DAY_MS) / DAY_MS)
    const all: [number, HourRow][] = [
      ...folded.flatMap(([h, rows]) => rows.map((row) => [h, row] as [number, HourRow])),
      ...liveRows,
      ...backfilled,
    ]
    const m = new Map<string, { sent: Record<string, number>; received: Record<string, number> }>()
    for (const [hour, row] of all) {
      if (Math.floor(hour / 24) < fromDay) continue
      const sent = row.author === me
      const other = sent ? row.subject : row.author
      const e = m.get(other) ?? {
        sent: { like: 0, repost: 0, reply: 0, quote: 0 },
        received: { like: 0, repost: 0, reply: 0, quote: 0 },
      }
      const side = sent ? e.sent : e.received
      side[row.kind] = (side[row.kind] ?? 0) + row.count
      m.set(other, e)
    }
    return m
  }

  it('top partners and summaries over 7, 30 and 90 days match a brute-force sum', async () => {
    const fence = await newRollupFence(t.redis, t.schema)
    for (const [hour, rows] of folded) {
      await rollUpHour(t.redis, t.schema, memoryLiveHours(new Map([[hour, rows]])), hour, {
        retentionDays: 90,
        fence,
      })
    }
    await createIndexWriter(t.redis, t.schema).apply(live)
    await writeBackfilled(
      t.redis,
      t.schema,
      backfilled.map(([h, row]) => [h, [row]]),
    )
    // A roll-up blob past the cursor's day (a fold in flight): not counted until the cursor reaches it.
    const inFlight = encodeDayBlob(markOfHour((TODAY - 1) * 24 + 2), [
      { kind: kindIndex('like'), partner: didId(dids[1] as string), count: 1000 },
    ])
    await t.redis.hset(t.schema.longTerm(me, 's'), TODAY - 1, inFlight)
    const reader = createLongWindowReader(t.redis, t.schema)
    for (const days of [7, 30, 90]) {
      const want = brute(days)
      const ranked = [...want.entries()]
        .map(([did, c]) => {
          let score = 0
          let total = 0
          for (const k of KINDS) {
            score += WEIGHTS[k] * ((c.sent[k] ?? 0) + (c.received[k] ?? 0))
            total += (c.sent[k] ?? 0) + (c.received[k] ?? 0)
          }
          return { did, score, total, sent: c.sent, received: c.received }
        })
        .sort((a, b) => b.score - a.score || b.total - a.total || (a.did < b.did ? -1 : 1))
        .slice(0, 10)
        .map(({ total: _t, ...p }) => p)
      const got = await reader.topPartnersLong({
        did: me,
        direction: 'both',
        days,
        weights: WEIGHTS,
        limit: 10,
      })
      expect(got).toEqual(ranked)
      const summary = await reader.summaryLong(me, days)
      const sent = { like: 0, repost: 0, reply: 0, quote: 0 }
      const received = { like: 0, repost: 0, reply: 0, quote: 0 }
      let partnersSent = 0
      let partnersReceived = 0
      for (const c of want.values()) {
        let s = 0
        let rcv = 0
        for (const k of KINDS) {
          sent[k] += c.sent[k] ?? 0
          received[k] += c.received[k] ?? 0
          s += c.sent[k] ?? 0
          rcv += c.received[k] ?? 0
        }
        if (s > 0) partnersSent++
        if (rcv > 0) partnersReceived++
      }
      expect(summary).toEqual({ sent, received, partnersSent, partnersReceived })
    }
    // 7 days sees less than 30, which sees less than 90.
    const total = async (days: number) => {
      const s = await reader.summaryLong(me, days)
      return KINDS.reduce((n, k) => n + s.sent[k] + s.received[k], 0)
    }
    const [d7, d30, d90] = [await total(7), await total(30), await total(90)]
    expect(d7).toBeLessThan(d30)
    expect(d30).toBeLessThan(d90)
  })

  it('rejects bad input', async () => {
    const reader = createLongWindowReader(t.redis, t.schema)
    await expect(reader.summaryLong('nope', 7)).rejects.toThrow('invalid DID')
    await expect(reader.summaryLong(me, 0)).rejects.toThrow('days')
  })
})
