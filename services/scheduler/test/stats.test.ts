import { HOUR_MS } from '@circles/core'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  computeInteractionStats,
  KINDS_AND_ALL,
  type Ranked,
  readGlobalStats,
  runGlobalStats,
  StatsCache,
} from '../src/stats.js'
import { KINDS, makeDids, makeHours, memoryLiveHours } from './helpers.js'

const NOW = 500_000 * HOUR_MS + 1234
const CURRENT = 500_000
const HOURS = Array.from({ length: 50 }, (_, i) => CURRENT - 49 + i)

function bruteTop(counts: Map<string, number>, limit: number): Ranked[] {
  return [...counts.entries()]
    .filter(([, n]) => n > 0)
    .map(([did, count]) => ({ did, count }))
    .sort((a, b) => b.count - a.count || (a.did < b.did ? -1 : 1))
    .slice(0, limit)
}

describe('global stats', () => {
  const dids = makeDids(400, 7)
  const data = makeHours(HOURS, 400, dids, 8)

  it('totals per hour and exact tops match a brute-force count', async () => {
    const stats = await computeInteractionStats(memoryLiveHours(data), { now: NOW, limit: 25 })
    expect(stats.hours.map((h) => h.hour)).toEqual(HOURS.slice(2))
    for (const h of stats.hours) {
      for (const kind of KINDS) {
        const want = (data.get(h.hour) ?? [])
          .filter((r) => r.kind === kind)
          .reduce((n, r) => n + r.count, 0)
        expect(h[kind]).toBe(want)
      }
    }
    for (const role of ['authors', 'subjects'] as const) {
      for (const kind of KINDS_AND_ALL) {
        const counts = new Map<string, number>()
        for (const hour of HOURS.filter((h) => h > CURRENT - 24)) {
          for (const r of data.get(hour) ?? []) {
            if (kind !== 'all' && r.kind !== kind) continue
            const did = role === 'authors' ? r.author : r.subject
            counts.set(did, (counts.get(did) ?? 0) + r.count)
          }
        }
        expect(stats.top[role][kind]).toEqual(bruteTop(counts, 25))
      }
    }
  })

  it('a cache kept between runs scans each completed hour once and gives the same document', async () => {
    const inner = memoryLiveHours(data)
    const scanned: number[] = []
    const live = {
      ...inner,
      scanHour: (hour: number, cb: Parameters<typeof inner.scanHour>[1]) => {
        scanned.push(hour)
        return inner.scanHour(hour, cb)
      },
    }
    const cache = new StatsCache()
    const rescans: number[][] = []
    for (const now of [NOW - HOUR_MS, NOW, NOW + 60_000]) {
      scanned.length = 0
      const cached = await computeInteractionStats(live, { now, limit: 10, cache })
      const fresh = await computeInteractionStats(inner, { now, limit: 10 })
      expect(cached).toEqual(fresh)
      rescans.push([...scanned])
    }
    expect(rescans[0]).toHaveLength(48)
    // An hour ago, CURRENT - 2 was still too fresh to keep; now it is kept, and then only two are read.
    expect(rescans[1]).toEqual([CURRENT - 2, CURRENT - 1, CURRENT])
    expect(rescans[2]).toEqual([CURRENT - 1, CURRENT])
  })

  it('the overall top is cut after merging kinds, not before', async () => {
    // "b" leads no single kind but has the most interactions in total.
    const [a, b, c, d, e] = makeDids(5, 3) as [string, string, string, string, string]
    const rows = [
      { author: a, subject: e, kind: 'like', count: 10 },
      { author: c, subject: e, kind: 'repost', count: 10 },
      { author: d, subject: e, kind: 'reply', count: 10 },
      { author: b, subject: e, kind: 'like', count: 9 },
      { author: b, subject: e, kind: 'repost', count: 9 },
      { author: b, subject: e, kind: 'reply', count: 9 },
    ]
    const stats = await computeInteractionStats(memoryLiveHours(new Map([[CURRENT, rows]])), {
      now: NOW,
      limit: 1,
    })
    expect(stats.top.authors.like).toEqual([{ did: a, count: 10 }])
    expect(stats.top.authors.all).toEqual([{ did: b, count: 27 }])
  })

  describe('document and pipeline', () => {
    let t: TestRedis
    beforeEach(async () => {
      t = await createTestRedis('sched-stats')
    })
    afterEach(async () => {
      await t.cleanup()
    })

    it('stores one JSON document with the stream lag and counter rates', async () => {
      const { redis, schema } = t
      await redis.hset(schema.firehoseMetrics, { events: 1000, status: 'connected' })
      await redis.xgroup('CREATE', schema.eventStream, schema.indexerGroup, '0', 'MKSTREAM')
      await redis.xadd(schema.eventStream, '1000-0', 'e', 'x')
      await redis.xadd(schema.eventStream, '2000-0', 'e', 'x')
      await redis.xadd(schema.eventStream, '3000-0', 'e', 'x')
      await redis.xreadgroup(
        'GROUP',
        schema.indexerGroup,
        'c1',
        'COUNT',
        1,
        'STREAMS',
        schema.eventStream,
        '>',
      )
      const live = memoryLiveHours(new Map())
      const first = await runGlobalStats(redis, schema, live, { now: 10_000 })
      expect(first.pipeline.stream).toEqual({ length: 3, undelivered: 2, pending: 1, lagMs: 8000 })
      expect(first.pipeline.firehose).toEqual({ events: 1000, status: 'connected' })
      expect(first.pipeline.rates).toEqual({})
      await redis.hset(schema.firehoseMetrics, 'events', 3000)
      const second = await runGlobalStats(redis, schema, live, { now: 20_000 })
      expect(second.pipeline.rates['firehose.events']).toBe(200)
      expect(await readGlobalStats(redis, schema)).toEqual(second)
    })

    it('leaves opted-out, purged and queued accounts out of every top list, before the cut', async () => {
      const { redis, schema } = t
      // Anchored on the real clock: the purge mark below is a real key.
      const now = Date.now()
      const current = Math.floor(now / HOUR_MS)
      const hours = Array.from({ length: 24 }, (_, i) => current - 23 + i)
      const ranked = makeHours(hours, 300, makeDids(300, 11), 12)
      const live = memoryLiveHours(ranked)
      const limit = 10
      const open = await computeInteractionStats(live, { now, limit })
      // The leaders of the overall lists, one per way of being hidden.
      const leaders = [...open.top.authors.all, ...open.top.subjects.all].map((r) => r.did)
      const [a, b, c] = [...new Set(leaders)] as [string, string, string]
      await redis.sadd(schema.optOuts, a)
      await redis.set(schema.accountPurged(b), String(Math.floor(now / 1000)), 'EX', 600)
      await redis.zadd(schema.forgetQueue, now, c)
      const hidden = new Set([a, b, c])
      const doc = await runGlobalStats(redis, schema, live, { now, limit })
      expect(await readGlobalStats(redis, schema)).toEqual(doc)
      for (const role of ['authors', 'subjects'] as const) {
        for (const kind of KINDS_AND_ALL) {
          const counts = new Map<string, number>()
          for (const hour of hours.filter((h) => h > current - 24)) {
            for (const r of ranked.get(hour) ?? []) {
              if (kind !== 'all' && r.kind !== kind) continue
              const did = role === 'authors' ? r.author : r.subject
              if (!hidden.has(did)) counts.set(did, (counts.get(did) ?? 0) + r.count)
            }
          }
          // Exactly the brute-force top of everyone else: full lists, nobody hidden.
          expect(doc.top[role][kind]).toEqual(bruteTop(counts, limit))
          expect(doc.top[role][kind]).toHaveLength(limit)
        }
      }
    })
  })
})
