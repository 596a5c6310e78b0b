import { DAY_MS } from '@circles/core'
import { readLongTerm } from '@circles/long-term'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { RollupFence } from '../src/fence.js'
import type { HourRow } from '../src/live-source.js'
import { runPrune } from '../src/prune.js'
import { rollUpHour } from '../src/rollup.js'
import { readSnapshots, runSnapshots } from '../src/snapshots.js'
import { makeDids, memoryLiveHours, newRollupFence, writeBackfilled } from './helpers.js'

const TODAY = Math.floor(Date.now() / DAY_MS)
const [A, B, C] = makeDids(3, 11) as [string, string, string]

describe('retention, pruning and snapshots', () => {
  let t: TestRedis
  let fence: RollupFence | undefined
  beforeEach(async () => {
    fence = undefined
    t = await createTestRedis('sched-retention')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  async function fold(day: number, hourOfDay: number, rows: HourRow[], retentionDays = 90) {
    const hour = day * 24 + hourOfDay
    fence ??= await newRollupFence(t.redis, t.schema)
    await rollUpHour(t.redis, t.schema, memoryLiveHours(new Map([[hour, rows]])), hour, {
      retentionDays,
      fence,
    })
  }

  it('keys expire retention days after their newest day; prune drops older days of live keys', async () => {
    const { redis, schema } = t
    await fold(TODAY - 8, 3, [{ author: A, subject: B, kind: 'like', count: 2 }], 10)
    await fold(TODAY - 2, 5, [{ author: A, subject: C, kind: 'reply', count: 1 }], 10)
    // The expiry follows the newest day: (TODAY - 2) + 10 days + 1.
    expect(await redis.pexpiretime(schema.longTerm(A, 's'))).toBe((TODAY - 2 + 11) * DAY_MS)
    expect(await redis.pexpiretime(schema.longTerm(B, 'r'))).toBe((TODAY - 8 + 11) * DAY_MS)
    expect((await redis.hkeys(schema.longTerm(A, 's'))).sort()).toEqual(
      [String(TODAY - 8), String(TODAY - 2)].sort(),
    )
    // Five days later, TODAY - 8 is past the 10-day retention and TODAY - 2 is not.
    const later = Date.now() + 5 * DAY_MS
    await redis.zadd(schema.circleRequests, later - 8 * DAY_MS, A, later, B)
    const res = await runPrune(redis, schema, {
      now: later,
      retentionDays: 10,
      snapshotRetentionDays: 30,
    })
    expect(res.longTermFields).toBe(2) // A's sent day and B's received day, both 13 days old then
    expect(res.circleRequests).toBe(1)
    expect(await redis.hkeys(schema.longTerm(A, 's'))).toEqual([String(TODAY - 2)])
    expect(await redis.exists(schema.longTerm(B, 'r'))).toBe(0)
    expect(await redis.zrange(schema.circleRequests, 0, -1)).toEqual([B])
    const sent = await readLongTerm(redis, schema, schema.longTerm(A, 's'), TODAY - 30, TODAY + 5)
    expect([...sent.entries()]).toEqual([[C, { like: 0, repost: 0, reply: 1, quote: 0 }]])
  })

  it('prune drops old days of the backfilled sides (bs, br) at the same retention', async () => {
    const { redis, schema } = t
    const rows = (day: number, row: HourRow): [number, HourRow[]] => [day * 24, [row]]
    await writeBackfilled(redis, schema, [
      rows(TODAY - 8, { author: A, subject: B, kind: 'like', count: 2 }),
      rows(TODAY - 2, { author: A, subject: C, kind: 'quote', count: 1 }),
      rows(TODAY - 2, { author: C, subject: B, kind: 'repost', count: 1 }),
    ])
    // Five days later, TODAY - 8 is past the 10-day retention and TODAY - 2 is not.
    const res = await runPrune(redis, schema, {
      now: Date.now() + 5 * DAY_MS,
      retentionDays: 10,
      snapshotRetentionDays: 30,
    })
    expect(res.longTermFields).toBe(2) // A's bs day and B's br day, both 13 days old then
    expect(await redis.hkeys(schema.longTerm(A, 'bs'))).toEqual([String(TODAY - 2)])
    expect(await redis.hkeys(schema.longTerm(B, 'br'))).toEqual([String(TODAY - 2)])
    expect(await redis.hkeys(schema.longTerm(C, 'br'))).toEqual([String(TODAY - 2)])
    const received = await readLongTerm(redis, schema, schema.longTerm(B, 'br'), TODAY - 30, TODAY)
    expect([...received.entries()]).toEqual([[C, { like: 0, repost: 1, reply: 0, quote: 0 }]])
  })

  it('snapshots tracked accounts per complete day, sent and received by kind', async () => {
    const { redis, schema } = t
    const day = TODAY - 3
    await fold(day, 10, [
      { author: A, subject: B, kind: 'like', count: 3 },
      { author: B, subject: A, kind: 'reply', count: 2 },
      { author: C, subject: A, kind: 'quote', count: 1 },
    ])
    // Day not complete yet (cursor at hour 10): nothing to snapshot.
    await redis.sadd(schema.tracked, A, 'not-a-did')
    await redis.zadd(schema.circleRequests, Date.now(), C)
    expect(
      (await runSnapshots(redis, schema, { now: Date.now(), retentionDays: 30 })).days,
    ).toEqual([day - 1, day - 2, day - 3])
    await fold(day, 23, [{ author: A, subject: C, kind: 'like', count: 1 }])
    // A backfill's rows of the same day (never the same rows as the roll-up's) add to them.
    await writeBackfilled(redis, schema, [
      [
        day * 24,
        [
          { author: A, subject: B, kind: 'like', count: 5 },
          { author: B, subject: A, kind: 'repost', count: 1 },
        ],
      ],
    ])
    const res = await runSnapshots(redis, schema, { now: Date.now(), retentionDays: 30 })
    expect(res).toEqual({ accounts: 2, hidden: 0, days: [day, day - 1, day - 2] })
    const snaps = await readSnapshots(redis, schema, A)
    expect(snaps[0]).toEqual({
      day,
      sent: { like: 9, repost: 0, reply: 0, quote: 0 },
      received: { like: 0, repost: 1, reply: 2, quote: 1 },
    })
    expect((await readSnapshots(redis, schema, C))[0]?.received.like).toBe(1)
    expect(await readSnapshots(redis, schema, B)).toEqual([])
    // Opted out, purged or queued to be forgotten: no snapshot, even while still tracked.
    await redis.del(schema.snapshot(A), schema.snapshot(C))
    await redis.sadd(schema.tracked, B)
    await redis.sadd(schema.optOuts, A)
    await redis.zadd(schema.forgetQueue, Date.now(), C)
    await redis.set(schema.accountPurged(B), '1', 'EX', 600)
    const after = await runSnapshots(redis, schema, { now: Date.now(), retentionDays: 30 })
    expect(after).toEqual({ accounts: 0, hidden: 3, days: [day, day - 1, day - 2] })
    expect(await redis.exists(schema.snapshot(A), schema.snapshot(B), schema.snapshot(C))).toBe(0)
  })
})
