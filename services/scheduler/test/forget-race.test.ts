import { HOUR_MS } from '@circles/core'
import {
  createIndexWriter,
  didId,
  didTableBucket,
  type IndexWriter,
} from '@circles/interaction-index'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FencedOutError } from '../src/fence.js'
import { runForget } from '../src/forget.js'
import type { ReclaimHooks } from '../src/forget-table.js'
import { createLiveHours } from '../src/live-index.js'
import type { HourRow, LiveHours } from '../src/live-source.js'
import { readRollupCursor, runRollup } from '../src/rollup.js'
import { aggregatesWithout, expectForgotten, storedAggregates } from './forget-helpers.js'
import { likeAt, makeDids, makeEvents, newRollupFence, partnersOf } from './helpers.js'

// Races of the forget step: a stale roll-up runner against it, a stale forget runner against a new one,
// and the index writer's creates against the reclaim of a DID table entry.

const CURRENT = Math.floor(Date.now() / HOUR_MS)
const HOURS = [CURRENT - 6, CURRENT - 5]
const NOW_AFTER = (CURRENT - 5 + 48) * HOUR_MS + 1

const dids = makeDids(60, 41)
const X = dids[1] as string
const P = dids[2] as string
const others = dids.filter((d) => d !== X)

/** A gate a test opens by hand. */
function gate(): { wait: Promise<void>; open(): void } {
  let open = () => {}
  const wait = new Promise<void>((resolve) => {
    open = resolve
  })
  return { wait, open }
}

describe('forget step races', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('sched-forget-race')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  it('a stale roll-up runner that read an hour before the purge is fenced out and writes nothing back', async () => {
    const { redis, schema } = t
    const { events, rows } = makeEvents(dids, HOURS, 400, 13)
    const writer = createIndexWriter(redis, schema)
    await writer.apply(events)
    // A folds the first hour, reads the second (X in it), and stalls there.
    const loaded = gate()
    const resume = gate()
    const live = createLiveHours(redis, schema)
    const stall = async (hour: number) => {
      if (hour === HOURS[1]) {
        loaded.open()
        await resume.wait
      }
    }
    const ids = live.ids as NonNullable<LiveHours['ids']>
    const stalling: LiveHours = {
      ...live,
      async scanHour(hour, onBatch) {
        await live.scanHour(hour, onBatch)
        await stall(hour)
      },
      ids: {
        ...ids,
        async scanHour(hour, onBatch) {
          await ids.scanHour(hour, onBatch)
          await stall(hour)
        },
      },
    }
    const opts = { now: NOW_AFTER, liveWindowHours: 48, retentionDays: 90 }
    const runA = runRollup(redis, schema, stalling, {
      ...opts,
      fence: await newRollupFence(redis, schema),
    }).then(
      () => 'finished',
      (err: Error) => err,
    )
    await loaded.wait
    expect(await readRollupCursor(redis, schema)).toBe(HOURS[0])
    // Meanwhile X is purged and queued; B takes over: it forgets X, then folds the second hour.
    await writer.purge(X, Date.now())
    await redis.zadd(schema.forgetQueue, Date.now(), X)
    const b = await runRollup(redis, schema, live, {
      ...opts,
      fence: await newRollupFence(redis, schema),
    })
    expect(b.forgot).toMatchObject({ accounts: 1, tableReclaimed: 1 })
    expect(b.rolled.map((h) => h.hour)).toEqual([HOURS[1]])
    // A wakes with X's rows in hand: its first write, the hour's DID table entries, is refused.
    resume.open()
    expect(await runA).toBeInstanceOf(FencedOutError)
    await expectForgotten(t, [X])
    const folded = HOURS.map((h) => [h, rows.get(h) ?? []] as [number, HourRow[]])
    expect(await storedAggregates(t, others)).toEqual(aggregatesWithout(folded, [X]))
    expect(await readRollupCursor(redis, schema)).toBe(HOURS[1])
    await writer.close()
  })

  it('a stale forget runner is fenced out at its next write; the new holder forgets the account whole', async () => {
    const { redis, schema } = t
    const { events } = makeEvents(dids, HOURS, 400, 14)
    const writer = createIndexWriter(redis, schema)
    await writer.apply(events)
    const opts = { now: NOW_AFTER, liveWindowHours: 48, retentionDays: 90 }
    const live = createLiveHours(redis, schema)
    await runRollup(redis, schema, live, { ...opts, fence: await newRollupFence(redis, schema) })
    await writer.purge(X, Date.now())
    await redis.zadd(schema.forgetQueue, Date.now(), X)
    // A stalls after its blobs and caches, before the DID table entry.
    const reached = gate()
    const resume = gate()
    const runA = runForget(redis, schema, {
      fence: await newRollupFence(redis, schema),
      now: NOW_AFTER,
      tableHooks: {
        afterCheck: async () => {
          reached.open()
          await resume.wait
        },
      },
    }).then(
      () => 'finished',
      (err: Error) => err,
    )
    await reached.wait
    const b = await runRollup(redis, schema, live, {
      ...opts,
      fence: await newRollupFence(redis, schema),
    })
    expect(b.forgot).toMatchObject({ accounts: 1, tableReclaimed: 1 })
    resume.open()
    expect(await runA).toBeInstanceOf(FencedOutError)
    await expectForgotten(t, [X])
    await writer.close()
  })

  describe('a create racing the reclaim of its account’s DID table entry', () => {
    const _weights = { like: 1, repost: 1, reply: 1, quote: 1 }
    const like = likeAt
    const entry = async () => {
      const id = didId(X)
      const v = await t.redis.hgetBuffer(t.schema.didTable(didTableBucket(id)), id)
      return v === null ? null : v.toString()
    }
    const logExists = () => t.redis.exists(t.schema.accountLog(X))
    /** P's partners as a reader resolves them: X is among them only if its id resolves. */
    const partnersOfP = () => partnersOf(t, P)

    let writer: IndexWriter
    let purgedAt: number
    beforeEach(async () => {
      // The writer has written X's entry (and remembers it); then X is purged and queued.
      writer = createIndexWriter(t.redis, t.schema)
      const now = Date.now()
      await writer.apply([
        like(P, X, now - 600_000, 1),
        like(X, dids[3] as string, now - 590_000, 2),
      ])
      purgedAt = now - 300_000
      await writer.purge(X, purgedAt)
      await t.redis.zadd(t.schema.forgetQueue, purgedAt, X)
      expect(await logExists()).toBe(0)
      expect(await entry()).not.toBe(null)
    })
    afterEach(async () => {
      await writer.close()
    })

    const forget = async (hooks: ReclaimHooks = {}) =>
      runForget(t.redis, t.schema, {
        fence: await newRollupFence(t.redis, t.schema),
        now: Date.now(),
        tableHooks: hooks,
      })
    /** A create after the purge (so not refused), which the writer sends without X's entry. */
    const createAfterPurge = async () => {
      await writer.apply([like(P, X, Date.now() - 60_000, 3)])
    }

    it('lands between the check and the HDEL: the second check writes the entry back', async () => {
      const res = await forget({ afterCheck: createAfterPurge })
      expect(res).toMatchObject({ accounts: 1, tableReclaimed: 0, tablePutBack: 1 })
      expect(await entry()).not.toBe(null)
      expect(await partnersOfP()).toContain(X)
    })

    it('lands between the HDEL and the epoch: records nobody can resolve, until the second check', async () => {
      let during: unknown[] = []
      const res = await forget({
        afterDelete: async () => {
          await createAfterPurge()
          during = [await logExists(), await entry(), (await partnersOfP()).includes(X)]
        },
      })
      // The race happened: X has records again, its entry is gone, P's partners miss it...
      expect(during).toEqual([1, null, false])
      // ...and the reclaim's second check put it back.
      expect(res).toMatchObject({ accounts: 1, tableReclaimed: 0, tablePutBack: 1 })
      expect(await entry()).not.toBe(null)
      expect(await partnersOfP()).toContain(X)
    })

    it('lands after the reclaim: the writer sees the epoch moved and writes the entry it remembered', async () => {
      const res = await forget()
      expect(res).toMatchObject({ accounts: 1, tableReclaimed: 1 })
      expect(await entry()).toBe(null)
      await createAfterPurge()
      expect(await entry()).not.toBe(null)
      expect(await partnersOfP()).toContain(X)
    })

    it('an old create delivered again after the reclaim is refused; the entry it wrote is reclaimed again', async () => {
      expect(await forget()).toMatchObject({ accounts: 1, tableReclaimed: 1 })
      // Another indexer process (it remembers nothing) applies an event from before the purge again.
      const other = createIndexWriter(t.redis, t.schema)
      const stats = await other.apply([like(P, X, purgedAt - 60_000, 4)])
      await other.close()
      expect(stats.refused).toBe(1)
      expect(await logExists()).toBe(0)
      expect(await entry()).not.toBe(null) // written before the writer knew the create was refused
      const again = await forget()
      expect(again).toMatchObject({ accounts: 0, recheckedIds: 1, reclaimedAgain: 1 })
      expect(await entry()).toBe(null)
    })
  })
})
