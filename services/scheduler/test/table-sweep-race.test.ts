import { DAY_MS, HOUR_MS } from '@circles/core'
import { createIndexWriter, type IndexWriter, rememberDids } from '@circles/interaction-index'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ReclaimHooks } from '../src/forget-table.js'
import { rollUpHour } from '../src/rollup.js'
import { sweepDidTable, type TableSweepResult } from '../src/table-sweep.js'
import {
  bucketOf,
  didInBucket,
  likeAt,
  memoryLiveHours,
  newPruneFence,
  newRollupFence,
  partnersOf,
  tableEntry,
} from './helpers.js'

// Writers racing the prune's reclaim of a quiet account's DID table entry, against the real Redis: the
// index writer's creates in each gap of the reclaim (the forget step's races, forget-race.test.ts, with the
// sweep as the reclaimer), and a roll-up folding an hour that names the account while the sweep runs.

// X and P in buckets of their own, so a sweep of one or two buckets reads just them.
const X = didInBucket(100, 11)
const P = didInBucket(101, 11)
const Q = didInBucket(102, 11)

const like = likeAt

describe('writers racing the DID table sweep', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('sched-sweep-race')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  const entry = (did: string) => tableEntry(t, did)
  /** One sweep of `buckets` buckets from X's, under a fresh prune fence. */
  const sweep = async (hooks: ReclaimHooks = {}, buckets = 1): Promise<TableSweepResult> => {
    await t.redis.set(t.schema.didTableSweepCursor, bucketOf(X))
    // The run's day as the prune takes it, at the call (a module-load day would stop a sweep after midnight).
    const now = Date.now()
    return sweepDidTable(t.redis, t.schema, Math.floor(now / DAY_MS), now, {
      fence: await newPruneFence(t.redis, t.schema),
      buckets,
      hooks,
    })
  }

  describe('a create of the index writer', () => {
    const logExists = () => t.redis.exists(t.schema.accountLog(X))
    /** P's partners as a reader resolves them: X is among them only if its id resolves. */
    const partnersOfP = () => partnersOf(t, P)

    let writer: IndexWriter
    beforeEach(async () => {
      // The writer wrote X's entry and remembers it; then X's records expired (its logs and P's went), and
      // P got a new partner since. X has nothing left but its entry.
      writer = createIndexWriter(t.redis, t.schema)
      await writer.apply([like(P, X, Date.now() - 600_000, 1)])
      await t.redis.del(t.schema.accountLog(X), t.schema.accountLog(P))
      await writer.apply([like(Q, P, Date.now() - 300_000, 2)])
      expect(await logExists()).toBe(0)
      expect(await entry(X)).toBe(X)
    })
    afterEach(async () => {
      await writer.close()
    })
    /** X's entry is one the writer remembers: without the epoch it would not send it again. */
    const create = async () => {
      await writer.apply([like(P, X, Date.now() - 60_000, 3)])
    }

    it('lands between the check and the HDEL: the second check writes the entry back', async () => {
      const res = await sweep({ afterCheck: create })
      expect(res).toMatchObject({ candidates: 1, reclaimed: 0, entriesDeleted: 1, putBack: 1 })
      expect(await entry(X)).toBe(X)
      expect(await partnersOfP()).toContain(X)
    })

    it('lands between the HDEL and the epoch: records nobody can resolve, until the second check', async () => {
      let during: unknown[] = []
      const res = await sweep({
        afterDelete: async () => {
          await create()
          during = [await logExists(), await entry(X), (await partnersOfP()).includes(X)]
        },
      })
      // The race happened: X has records again, its entry is gone, P's partners miss it...
      expect(during).toEqual([1, null, false])
      // ...and the reclaim's second check put it back.
      expect(res).toMatchObject({ candidates: 1, reclaimed: 0, putBack: 1 })
      expect(await entry(X)).toBe(X)
      expect(await partnersOfP()).toContain(X)
    })

    it('lands after the reclaim: the writer sees the epoch moved and writes the entry it remembered', async () => {
      expect(await sweep()).toMatchObject({ candidates: 1, reclaimed: 1 })
      expect(await entry(X)).toBe(null)
      await create()
      expect(await entry(X)).toBe(X)
      expect(await partnersOfP()).toContain(X)
    })
  })

  it('a roll-up folding an hour that names X while the sweep reclaims it: the fold writes the names again', async () => {
    // X and P: entries and nothing else (their logs expired after the roll-up read the hour, which is late).
    await rememberDids(t.redis, t.schema, [X, P])
    const hour = Math.floor(Date.now() / HOUR_MS) - 50
    const live = memoryLiveHours(
      new Map([[hour, [{ author: P, subject: X, kind: 'like', count: 1 }]]]),
    )
    let during: TableSweepResult | undefined
    const folded = await rollUpHour(t.redis, t.schema, live, hour, {
      retentionDays: 90,
      fence: await newRollupFence(t.redis, t.schema),
      // The sweep runs whole between the fold's names and its blobs: neither account has data yet.
      afterNames: async () => {
        during = await sweep({}, 2)
      },
    })
    expect(during).toMatchObject({ candidates: 2, reclaimed: 2 })
    expect(folded.records).toBe(2)
    // The blobs came after the sweep's second check; the fold saw the epoch move and wrote the names again.
    expect(await t.redis.exists(t.schema.longTerm(X, 'r'), t.schema.longTerm(P, 's'))).toBe(2)
    expect(await entry(X)).toBe(X)
    expect(await entry(P)).toBe(P)
    // And the next sweep keeps them: they have data.
    expect(await sweep({}, 2)).toMatchObject({ candidates: 0, reclaimed: 0 })
  })
})
