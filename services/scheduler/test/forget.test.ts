import { createHash } from 'node:crypto'
import {
  BACKFILL_QUEUE,
  backfillJobId,
  backfillQueueOptions,
  enqueueBackfill,
} from '@circles/backfill'
import { DAY_MS, HOUR_MS } from '@circles/core'
import { createIndexWriter, didId } from '@circles/interaction-index'
import { createLongWindowReader } from '@circles/long-term'
import { createTestRedis, prng, type TestRedis } from '@circles/testkit'
import { Queue } from 'bullmq'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { runForget } from '../src/forget.js'
import { createLiveHours } from '../src/live-index.js'
import type { HourRow } from '../src/live-source.js'
import { rollUpHour, runRollup } from '../src/rollup.js'
import { runSnapshots } from '../src/snapshots.js'
import {
  aggregatesWithout,
  expectForgotten,
  longTermRecords,
  storedAggregates,
} from './forget-helpers.js'
import {
  makeDids,
  makeEvents,
  memoryLiveHours,
  newRollupFence,
  writeBackfilled,
} from './helpers.js'

// The forget step against the real Redis: interactions written with the indexer's writer and folded by
// the roll-up, older days folded from rows, an account purged as the indexer will (the writer's purge,
// then the forget queue), then a roll-up run, which forgets first. Clocks are anchored on Date.now().

const NOW = Date.now()
const TODAY = Math.floor(NOW / DAY_MS)
const CURRENT = Math.floor(NOW / HOUR_MS)
// Hours the writer indexes; with the roll-up's clock 48 h ahead the first three leave the live window.
const WRITTEN = [CURRENT - 6, CURRENT - 5, CURRENT - 4]
const LIVE = [CURRENT - 3, CURRENT - 2, CURRENT - 1]
const NOW_AFTER = (CURRENT - 4 + 48) * HOUR_MS + 1
// One more hour (CURRENT - 3) leaves the window by the second roll-up.
const NOW_LATER = NOW_AFTER + HOUR_MS
const WEIGHTS = { like: 1, repost: 2, reply: 3, quote: 4 }
const KINDS = ['like', 'repost', 'reply', 'quote'] as const

const dids = makeDids(40, 31)
// A did:plc and a did:web (every tenth is one), both busy and partners of each other.
const X = dids[1] as string
const Y = dids[9] as string
const P = dids[2] as string
const others = dids.filter((d) => d !== X && d !== Y)

/** Hours 60, 20, 5 and 3 days ago: the 90, 30 and 7-day windows each see some. */
function olderHours(): [number, HourRow[]][] {
  const r = prng(77)
  const pick = () => dids[Math.floor(r() * dids.length)] as string
  return [60, 20, 5, 3].map((ago, i) => {
    const rows: HourRow[] = []
    for (let j = 0; j < 60; j++) {
      const a = j % 3 === 0 ? X : j % 3 === 1 ? Y : pick()
      const b = j % 5 === 0 ? (a === X ? Y : X) : pick()
      if (a !== b)
        rows.push({ author: a, subject: b, kind: KINDS[j % 4] as string, count: 1 + (j % 3) })
      if (j % 2 === 0 && a !== b) rows.push({ author: b, subject: a, kind: 'like', count: 1 })
    }
    return [(TODAY - ago) * 24 + 5 + i, rows]
  })
}

/** Backfilled rows (a repo's history, written as `bs`/`br`) of days 80, 35 and 9 ago, X and Y in many. */
function backfilledHours(): [number, HourRow[]][] {
  const r = prng(91)
  const pick = () => dids[Math.floor(r() * dids.length)] as string
  return [80, 35, 9].map((ago, i) => {
    const rows: HourRow[] = []
    for (let j = 0; j < 40; j++) {
      const a = j % 4 === 0 ? X : j % 4 === 1 ? Y : pick()
      const b = j % 6 === 0 ? (a === X ? Y : X) : pick()
      if (a !== b) rows.push({ author: a, subject: b, kind: KINDS[j % 4] as string, count: 1 })
      if (j % 3 === 0 && a !== b) rows.push({ author: b, subject: a, kind: 'reply', count: 2 })
    }
    return [(TODAY - ago) * 24 + i, rows]
  })
}

/** Day-blob records naming `gone` in hashes of the backfilled sides. */
async function backfilledNaming(gone: readonly string[]): Promise<number> {
  const ids = new Set(gone.map((d) => didId(d).toString('hex')))
  return (await longTermRecords(t)).filter(
    ([key, , id]) => ids.has(id) && (key.endsWith(':bs') || key.endsWith(':br')),
  ).length
}

let t: TestRedis

describe('forget step', () => {
  beforeEach(async () => {
    t = await createTestRedis('sched-forget')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  it('forgets a purged account everywhere, in both directions, and nothing else', async () => {
    const { redis, schema } = t
    const older = olderHours()
    const fence = await newRollupFence(redis, schema)
    for (const [hour, rows] of older) {
      await rollUpHour(redis, schema, memoryLiveHours(new Map([[hour, rows]])), hour, {
        retentionDays: 90,
        fence,
      })
    }
    // A repo backfill's history (bs/br), and its state keys (P's stay).
    const backfilled = backfilledHours()
    await writeBackfilled(redis, schema, backfilled)
    for (const d of [X, Y, P]) {
      await redis.hset(schema.backfillRepo(d), 'state', 'done')
      await redis.hset(schema.backfillAccount(d), 'state', 'done')
    }
    // and queued backfill jobs (their ids and data name the account)
    const backfills = new Queue(BACKFILL_QUEUE, {
      connection: redis,
      ...backfillQueueOptions(schema),
    })
    for (const d of [X, P]) await enqueueBackfill(backfills, d, 'request')
    const { events, rows } = makeEvents(dids, [...WRITTEN, ...LIVE], 300, 5)
    const writer = createIndexWriter(redis, schema)
    await writer.apply(events)
    const live = createLiveHours(redis, schema)
    const first = await runRollup(redis, schema, live, {
      now: NOW_AFTER,
      liveWindowHours: 48,
      retentionDays: 90,
      fence: await newRollupFence(redis, schema),
    })
    expect(first.rolled.map((h) => h.hour)).toEqual(WRITTEN)
    // What the API and the snapshots job keep about them, and about P (which stays).
    await redis.sadd(schema.tracked, X, Y, P)
    await runSnapshots(redis, schema, { now: NOW_AFTER, retentionDays: 365 })
    const avatar = 'https://cdn.example/img/avatar/x.jpg'
    await redis.set(schema.profile(X), JSON.stringify({ did: X, handle: 'x.example.com', avatar }))
    await redis.set(schema.profile(Y), JSON.stringify({ did: Y, missing: true }))
    await redis.set(schema.profile(P), JSON.stringify({ did: P, handle: 'p.example.com' }))
    // The name index the page's suggestions read: X's members go, P's stay.
    await redis.zadd(schema.profileNames, 0, `h:x.example.com\0${X}`, 0, `h:p.example.com\0${P}`)
    await redis.zadd(
      schema.profileNamesSeen,
      NOW,
      `h:x.example.com\0${X}`,
      NOW,
      `h:p.example.com\0${P}`,
    )
    await redis.set(schema.handleDid('x.example.com'), X)
    await redis.set(schema.handleDid('y.example.com'), P) // a handle now someone else's: stays
    await redis.set(schema.avatar(createHash('sha1').update(avatar).digest('hex')), 'data:x')
    for (const d of [X, Y, P]) {
      await redis.set(schema.circle(d, 'abc1'), '{}')
      await redis.set(schema.circleImage(d, 'abc1'), 'png')
      await redis.set(schema.circleLock(d, 'abc2'), 'token')
      await redis.zadd(schema.circleRequests, NOW, d)
    }
    const version = Number((await redis.get(schema.optOutsVersion)) ?? 0)

    // Before: the partners' long windows show them (else the test would prove nothing).
    const reader = createLongWindowReader(redis, schema, { now: () => NOW_LATER })
    const shownIn = async () => {
      const seen = { 7: 0, 30: 0, 90: 0 } as Record<number, number>
      for (const d of others) {
        for (const days of [7, 30, 90]) {
          const top = await reader.topPartnersLong({
            did: d,
            direction: 'both',
            days,
            weights: WEIGHTS,
            limit: 1000,
          })
          seen[days] = (seen[days] ?? 0) + top.filter((p) => p.did === X || p.did === Y).length
        }
      }
      return seen
    }
    const before = await shownIn()
    for (const days of [7, 30, 90]) expect(before[days]).toBeGreaterThan(0)
    expect(await backfilledNaming([X, Y])).toBeGreaterThan(0)

    // The indexer's side: purge the 48-hour index, then queue.
    const purgedAt = Date.now()
    await writer.purge(X, purgedAt)
    await writer.purge(Y, purgedAt)
    await redis.zadd(schema.forgetQueue, purgedAt, X, purgedAt, Y)
    const second = await runRollup(redis, schema, live, {
      now: NOW_LATER,
      liveWindowHours: 48,
      retentionDays: 90,
      fence: await newRollupFence(redis, schema),
    })
    expect(second.rolled.map((h) => h.hour)).toEqual([CURRENT - 3])
    const f = second.forgot
    expect(f).toMatchObject({ accounts: 2, invalid: 0, requeued: 0, tableReclaimed: 2 })
    expect(f.blobsRewritten).toBeGreaterThan(0)
    expect(f.recordsRemoved).toBeGreaterThanOrEqual(f.blobsRewritten)
    expect(f.partnersUnknown).toBe(0)
    // 8 long-term hashes (s, r, bs, br each), 2 snapshots, 3 profiles and caches of X, Y's profile,
    // 4 backfill states, 6 circle keys, X's backfill job.
    expect(f.keysDeleted).toBe(8 + 2 + 3 + 1 + 4 + 6 + 1)
    expect(await backfills.getJob(backfillJobId(X))).toBeUndefined()
    expect(await backfills.getJob(backfillJobId(P))).toBeDefined()
    await backfills.close()
    process.stdout.write(`[forget] two accounts: ${JSON.stringify(f)}\n`)

    await expectForgotten(t, [X, Y])
    expect(await backfilledNaming([X, Y])).toBe(0)
    expect(await shownIn()).toEqual({ 7: 0, 30: 0, 90: 0 })
    // Everyone else's aggregates are exactly theirs without X and Y, the hour folded after included.
    const folded = [
      ...older,
      ...[...WRITTEN, CURRENT - 3].map((h) => [h, rows.get(h) ?? []] as [number, HourRow[]]),
    ]
    expect(await storedAggregates(t, others)).toEqual(aggregatesWithout(folded, [X, Y], backfilled))
    // P's things stay; the queue is empty; cached circles made before are stale now.
    expect(
      await redis.exists(
        schema.snapshot(P),
        schema.profile(P),
        schema.circle(P, 'abc1'),
        schema.backfillRepo(P),
        schema.backfillAccount(P),
      ),
    ).toBe(5)
    expect(await redis.get(schema.handleDid('y.example.com'))).toBe(P)
    expect(await redis.smembers(schema.tracked)).toEqual([P])
    expect(await redis.zrange(schema.circleRequests, 0, -1)).toEqual([P])
    expect(await redis.zrange(schema.profileNames, 0, -1)).toEqual([`h:p.example.com\0${P}`])
    expect(await redis.zrange(schema.profileNamesSeen, 0, -1)).toEqual([`h:p.example.com\0${P}`])
    expect(await redis.zcard(schema.forgetQueue)).toBe(0)
    expect(Number(await redis.get(schema.optOutsVersion))).toBe(version + 1)

    // Runs after it find nothing to do, and fold without bringing them back.
    const third = await runRollup(redis, schema, live, {
      now: NOW_LATER + HOUR_MS,
      liveWindowHours: 48,
      retentionDays: 90,
      fence: await newRollupFence(redis, schema),
    })
    expect(third.forgot).toMatchObject({ accounts: 0, keysDeleted: 0, recheckedIds: 2 })
    expect(third.rolled.map((h) => h.hour)).toEqual([CURRENT - 2])
    await expectForgotten(t, [X, Y])
    await writer.close()
  })

  it('bad input: members that are not DIDs leave the queue, counted; a purge meanwhile keeps one queued; a bad blob is skipped', async () => {
    const { redis, schema } = t
    const fence = await newRollupFence(redis, schema)
    const Q = dids[3] as string
    const Z = dids[5] as string
    const hour = (TODAY - 2) * 24 + 3
    const rows: HourRow[] = [
      { author: X, subject: P, kind: 'like', count: 2 },
      { author: P, subject: Q, kind: 'reply', count: 1 },
      { author: Z, subject: Q, kind: 'repost', count: 1 },
    ]
    await rollUpHour(redis, schema, memoryLiveHours(new Map([[hour, rows]])), hour, {
      retentionDays: 90,
      fence,
    })
    // A blob of X's own that does not decode (a record cut short): counted, and it goes with X's hashes.
    await redis.hset(schema.longTerm(X, 'r'), String(TODAY - 1), Buffer.from([5, 0x41, 1, 2]))
    await redis.zadd(schema.forgetQueue, 1, 'not-a-did', 2, 'did:plc:UPPERCASE', 3, X, 4, Z)
    const res = await runForget(redis, schema, {
      fence,
      now: Date.now(),
      // Z is purged again while its first purge is being forgotten.
      tableHooks: {
        afterCheck: async () => {
          await redis.zadd(schema.forgetQueue, 5, Z)
        },
      },
    })
    expect(res).toMatchObject({ invalid: 2, accounts: 1, requeued: 1, badBlobs: 1 })
    expect(await redis.zrange(schema.forgetQueue, 0, -1, 'WITHSCORES')).toEqual([Z, '5'])
    // The next run forgets Z at its new score.
    const next = await runForget(redis, schema, { fence, now: Date.now() })
    expect(next).toMatchObject({ invalid: 0, accounts: 1, requeued: 0 })
    expect(await redis.zcard(schema.forgetQueue)).toBe(0)
    await expectForgotten(t, [X, Z], false)
    expect(await storedAggregates(t, [P, Q])).toEqual(aggregatesWithout([[hour, rows]], [X, Z]))
  })
})
