import { DAY_MS, HOUR_MS } from '@circles/core'
import {
  createIndexReader,
  createIndexWriter,
  DID_TABLE_BUCKETS,
  didId,
  rememberDids,
} from '@circles/interaction-index'
import { encodeDayBlob } from '@circles/long-term'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FencedOutError } from '../src/fence.js'
import { runPrune } from '../src/prune.js'
import { sweepDidTable, type TableSweepOptions } from '../src/table-sweep.js'
import { bucketOf, didInBucket, likeAt, makeDids, newPruneFence, tableEntry } from './helpers.js'

// The prune's DID table sweep against the real Redis: entries of accounts with no data left go, those of
// accounts with any go on; bad entries go; the cursor moves on and wraps; a run that died mid-reclaim is
// repaired by the next; a stale runner is fenced out. The races with writers are in table-sweep-race.test.ts.

const TODAY = Math.floor(Date.now() / DAY_MS)

const like = likeAt

describe('DID table sweep', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('sched-sweep')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  const entry = (did: string) => tableEntry(t, did)
  const sweep = async (opts: Partial<TableSweepOptions> & { from?: number } = {}) => {
    if (opts.from !== undefined) await t.redis.set(t.schema.didTableSweepCursor, opts.from)
    // The run's day as the prune takes it, at the call (a module-load day would stop a sweep after midnight).
    const now = Date.now()
    return sweepDidTable(t.redis, t.schema, Math.floor(now / DAY_MS), now, {
      fence: await newPruneFence(t.redis, t.schema),
      buckets: DID_TABLE_BUCKETS,
      ...opts,
    })
  }

  it('reclaims the entries of accounts without data, keeps the others, removes bad entries', async () => {
    const { redis, schema } = t
    const [q1, q2, active, partner, longTerm, spilled, oldSpill, z, v] = makeDids(9, 71) as string[]
    const web = 'did:web:quiet.example.com'
    // Quiet: an entry and nothing else.
    await rememberDids(redis, schema, [q1 as string, q2 as string, web])
    // Active: a like written by the index writer (both get logs and entries).
    const writer = createIndexWriter(redis, schema)
    await writer.apply([like(active as string, partner as string, Date.now() - 60_000, 1)])
    await writer.close()
    // Only long-term hashes; only a spill log (its main log gone, as after a purge that emptied it).
    await rememberDids(redis, schema, [longTerm as string, spilled as string])
    await redis.hset(schema.longTerm(longTerm as string, 's'), TODAY - 3, encodeDayBlob(24, []))
    const hour = Math.floor(Date.now() / HOUR_MS) - 3
    await redis.set(schema.accountHourLog(spilled as string, hour), 'records')
    // Only a spill log of an hour before the window's start - 1 h (a long grace keeps it): folded, read by
    // nobody, so it does not count.
    await rememberDids(redis, schema, [oldSpill as string])
    await redis.set(schema.accountHourLog(oldSpill as string, hour - 60), 'records')
    // Bad: not a DID; a DID under another's id; a good pair in the wrong bucket.
    const junkId = Buffer.from(didId(z as string))
    junkId[7] = (junkId[7] as number) ^ 0xff // same bucket (the first two bytes), no DID's id
    await redis.hset(schema.didTable(bucketOf(z as string)), junkId, 'not a did')
    await redis.hset(schema.didTable(bucketOf(z as string)), didId(z as string), v as string)
    const wrong = (bucketOf(v as string) + 1) % DID_TABLE_BUCKETS
    await redis.hset(schema.didTable(wrong), didId(v as string), v as string)

    const res = await sweep({ from: 0 })
    expect(res).toMatchObject({
      from: 0,
      buckets: DID_TABLE_BUCKETS,
      next: 0,
      wrapped: true,
      entries: 11,
      bad: 3,
      // the quiet three, the old spill log's, and the spilled one (its spill log is found by the full check)
      candidates: 5,
      reclaimed: 4,
      kept: 1,
      putBack: 0,
      batches: 1,
      recovered: 0,
      stopped: null,
    })
    for (const d of [q1, q2, web, oldSpill, z, v]) expect(await entry(d as string)).toBe(null)
    expect(await redis.hexists(schema.didTable(wrong), didId(v as string))).toBe(0)
    for (const d of [active, partner, longTerm, spilled]) expect(await entry(d as string)).toBe(d)
    expect(await redis.exists(schema.didTableSweepPending)).toBe(0)
    // The prune runs it last and reports it.
    const pruned = await runPrune(redis, schema, {
      now: Date.now(),
      retentionDays: 90,
      snapshotRetentionDays: 365,
      tableSweep: { fence: await newPruneFence(redis, schema), buckets: DID_TABLE_BUCKETS },
    })
    expect(pruned.didTable).toMatchObject({ entries: 4, candidates: 1, reclaimed: 0, kept: 1 })
  })

  it('moves its cursor over a slice per run, wraps after the last bucket, and resumes there', async () => {
    const last = DID_TABLE_BUCKETS - 1
    const quiet = [last - 1, last, 0, 1, 2].map((b) => didInBucket(b, 5))
    await rememberDids(t.redis, t.schema, quiet)
    const first = await sweep({ from: last - 1, buckets: 4 })
    expect(first).toMatchObject({ from: last - 1, buckets: 4, next: 2, wrapped: true })
    expect(first.reclaimed).toBe(4)
    expect(await entry(quiet[4] as string)).toBe(quiet[4]) // bucket 2: not this run's
    expect(await t.redis.get(t.schema.didTableSweepCursor)).toBe('2')
    const second = await sweep({ buckets: 3 })
    expect(second).toMatchObject({ from: 2, buckets: 3, next: 5, wrapped: false, reclaimed: 1 })
    expect(await entry(quiet[4] as string)).toBe(null)
    // A batch smaller than the slice: several reclaims (one epoch move each), the cursor saved after each.
    const more = [10, 11, 12].map((b) => didInBucket(b, 6))
    await rememberDids(t.redis, t.schema, more)
    const third = await sweep({ from: 10, buckets: 3, batch: 1 })
    expect(third).toMatchObject({ buckets: 3, next: 13, reclaimed: 3, batches: 3 })
  })

  it('an account named only by a partner’s log record older than the window: reclaimed, no reader changes', async () => {
    const { redis, schema } = t
    const [x, p, q] = makeDids(3, 73) as [string, string, string]
    // X liked P 56 h ago, Q liked P 11 h ago: written by a writer whose clock is 10 h behind (a real one
    // skips a create older than the window), before the roll-up folded X's hour (P's log keeps the record
    // until its next write after that). P's log lives on (its newest record is later); X's expires first.
    const old = Date.now() - 56 * HOUR_MS
    const late = createIndexWriter(redis, schema, {
      now: () => Date.now() - 10 * HOUR_MS,
      rollupGraceHours: 24,
    })
    const stats = await late.apply([like(x, p, old, 1), like(q, p, Date.now() - 11 * HOUR_MS, 2)])
    expect(stats.added).toBe(2)
    await late.close()
    // X's own log expired (with the default grace it would have, an hour or two ago); P's record of X stays.
    await redis.del(schema.accountLog(x))
    expect((await redis.getBuffer(schema.accountLog(p)))?.includes(didId(x))).toBe(true)
    const reader = createIndexReader(redis, schema)
    const partnersOfP = async () =>
      (
        await reader.topPartners({
          did: p,
          direction: 'both',
          windowHours: 48,
          weights: { like: 1, repost: 1, reply: 1, quote: 1 },
          limit: 100,
        })
      ).map((r) => r.did)
    expect(await partnersOfP()).toEqual([q])
    // While that hour waits for the roll-up (an hour older than the window + 1 h), nothing is swept.
    const behind = await sweep({ from: bucketOf(x), buckets: 1 })
    expect(behind).toMatchObject({ stopped: 'rollup-behind', buckets: 0, reclaimed: 0 })
    expect(await entry(x)).toBe(x)
    // Once it is folded and dropped (X's long-term hash has expired since), X's entry goes.
    await reader.dropHour(Math.floor(old / HOUR_MS))
    const res = await sweep({ from: bucketOf(x), buckets: 1 })
    expect(res).toMatchObject({ stopped: null, reclaimed: 1 })
    expect(await entry(x)).toBe(null)
    expect(await partnersOfP()).toEqual([q])
  })

  it('an account named only by a partner’s day field past the retention: the run prunes the field, then reclaims', async () => {
    const { redis, schema } = t
    const x = didInBucket(60, 12)
    const p = didInBucket(61, 12)
    await rememberDids(redis, schema, [x, p])
    // X's hashes expired at its newest day + 90 + 1 (TODAY - 91); P's hash lives on (a newer day).
    const named = encodeDayBlob(24, [{ kind: 0, partner: didId(x), count: 1 }])
    const other = encodeDayBlob(24, [{ kind: 0, partner: didId(p), count: 1 }])
    await redis.hset(schema.longTerm(p, 'r'), TODAY - 91, named, TODAY - 2, other)
    await redis.set(schema.didTableSweepCursor, 60)
    const res = await runPrune(redis, schema, {
      now: Date.now(),
      retentionDays: 90,
      snapshotRetentionDays: 365,
      tableSweep: { fence: await newPruneFence(redis, schema), buckets: 2 },
    })
    expect(res.longTermFields).toBe(1)
    expect(res.didTable).toMatchObject({ entries: 2, candidates: 1, reclaimed: 1 })
    expect(await redis.hkeys(schema.longTerm(p, 'r'))).toEqual([String(TODAY - 2)])
    expect(await entry(x)).toBe(null)
    expect(await entry(p)).toBe(p)
  })

  it('an account known only from a backfill (a bs or br hash) keeps its entry; once that is gone, it goes', async () => {
    const { redis, schema } = t
    const [b1, b2, b3] = [70, 71, 72].map((b) => didInBucket(b, 13)) as [string, string, string]
    await rememberDids(redis, schema, [b1, b2, b3])
    const blob = encodeDayBlob(0, [{ kind: 0, partner: didId(b1), count: 1 }])
    await redis.hset(schema.longTerm(b1, 'bs'), TODAY - 3, blob)
    await redis.hset(schema.longTerm(b2, 'br'), TODAY - 3, blob)
    // B3 has nothing at the checks before the HDEL; a backfill writes its `bs` hash right after them.
    const res = await sweep({
      from: 70,
      buckets: 3,
      hooks: {
        afterCheck: async () => {
          await redis.hset(schema.longTerm(b3, 'bs'), TODAY - 3, blob)
        },
      },
    })
    expect(res).toMatchObject({ entries: 3, candidates: 1, reclaimed: 0, putBack: 1 })
    for (const d of [b1, b2, b3]) expect(await entry(d)).toBe(d)
    // Their hashes expired: the next sweep reclaims them; B2 still has its `br`.
    await redis.del(schema.longTerm(b1, 'bs'), schema.longTerm(b3, 'bs'))
    const later = await sweep({ from: 70, buckets: 3 })
    expect(later).toMatchObject({ entries: 3, candidates: 2, reclaimed: 2, putBack: 0 })
    expect([await entry(b1), await entry(b2), await entry(b3)]).toEqual([null, b2, null])
  })

  it('stops where Redis’s day is past the run’s: a partner’s day field may not be pruned yet', async () => {
    const x = didInBucket(20, 7)
    await rememberDids(t.redis, t.schema, [x])
    await t.redis.set(t.schema.didTableSweepCursor, 20)
    const res = await sweepDidTable(t.redis, t.schema, TODAY - 1, Date.now(), {
      fence: await newPruneFence(t.redis, t.schema),
      buckets: 4,
    })
    expect(res).toMatchObject({ stopped: 'clock', buckets: 0, next: 20, reclaimed: 0 })
    expect(await entry(x)).toBe(x)
  })

  it('a run that died mid-reclaim: the next checks its pending accounts first', async () => {
    const { redis, schema } = t
    const [x, y, p] = makeDids(3, 75) as [string, string, string]
    // X: its entry deleted, then a create landed, then the run died (no epoch move, no second check).
    const writer = createIndexWriter(redis, schema)
    await writer.apply([like(x, p, Date.now() - 60_000, 1)])
    await writer.close()
    await redis.hdel(schema.didTable(bucketOf(x)), didId(x))
    // Y: marked, its entry still there, no data.
    await rememberDids(redis, schema, [y])
    await redis.hset(schema.didTableSweepPending, x, 1, y, 1, 'not-a-did', 1)
    const empty = didInBucket(30, 8) // a slice that holds only this quiet account
    await rememberDids(redis, schema, [empty])
    const res = await sweep({ from: 30, buckets: 1 })
    expect(res).toMatchObject({ recovered: 2, kept: 1, reclaimed: 2, batches: 2 })
    expect(await entry(x)).toBe(x)
    expect(await entry(y)).toBe(null)
    expect(await redis.exists(schema.didTableSweepPending)).toBe(0)
  })

  it('a stale runner is fenced out at its HDEL; the new holder finishes its pending account', async () => {
    const x = didInBucket(40, 9)
    await rememberDids(t.redis, t.schema, [x])
    let resume = () => {}
    const stalled = new Promise<void>((r) => {
      resume = r
    })
    let reached = () => {}
    const atCheck = new Promise<void>((r) => {
      reached = r
    })
    const a = sweep({
      from: 40,
      buckets: 1,
      hooks: {
        afterCheck: async () => {
          reached()
          await stalled
        },
      },
    }).then(
      () => 'finished',
      (err: Error) => err,
    )
    await atCheck
    // A's mark is written; B takes the lock over, claims its fence, and finds the mark.
    expect(await t.redis.hexists(t.schema.didTableSweepPending, x)).toBe(1)
    const b = await sweep({ from: 40, buckets: 1 })
    expect(b).toMatchObject({ recovered: 1, reclaimed: 1 })
    resume()
    expect(await a).toBeInstanceOf(FencedOutError)
    expect(await entry(x)).toBe(null)
    expect(await t.redis.exists(t.schema.didTableSweepPending)).toBe(0)
  })
})
