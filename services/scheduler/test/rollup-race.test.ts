import { createHash } from 'node:crypto'
import { HOUR_MS } from '@circles/core'
import { createIndexWriter } from '@circles/interaction-index'
import {
  createTestRedis,
  pollUntil,
  type StallProxy,
  startStallProxy,
  type TestRedis,
} from '@circles/testkit'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { toConfig } from '../src/config.js'
import { createRollupFence, FencedOutError } from '../src/fence.js'
import { createLiveHours } from '../src/live-index.js'
import { acquireLock } from '../src/lock.js'
import { luaScript } from '../src/lua.js'
import { readRollupCursor, runRollup } from '../src/rollup.js'
import { createSchedulerService, type SchedulerService } from '../src/service.js'
import {
  type AggregateDiff,
  actualAggregates,
  diffAggregates,
  expectedAggregates,
  makeDids,
  makeEvents,
  sortedEntries,
} from './helpers.js'

// Two roll-up runners on the same hours of one live index, one of them stalled until its lock expired
// and the other took over: the aggregates must equal those of a single undisturbed roll-up of the same
// input, row by row. The stalled scheduler reaches Redis through a TCP proxy the test stalls at a chosen
// command (testkit's startStallProxy), so its held writes reach Redis late, after the other runner's:
// a delay inside the runner could only hold writes it had not sent yet. The mid-merge case pauses the
// runner itself between reading the blobs and writing the merges (the `beforeMerge` hook), the one place
// a proxy cannot pick out from the bytes.

const CURRENT = Math.floor(Date.now() / HOUR_MS)
// Four consecutive hours: at least two share a day, so later hours merge into earlier ones' blobs.
const HOURS = [CURRENT - 9, CURRENT - 8, CURRENT - 7, CURRENT - 6]
const NOW_AFTER = (CURRENT - 6 + 48) * HOUR_MS + 1
// Short, so a takeover comes quickly, yet long enough that the runner that is not stalled keeps its lock
// on a loaded machine (it extends it every twelfth of this, between steps).
const LOCK_TTL_MS = 3000

const dids = makeDids(200, 9)
const { events, rows } = makeEvents(dids, HOURS, 1500, 17)
const interactionsIn = [...rows.values()].reduce((n, list) => n + list.length, 0)

/**
 * Whether bytes on the wire call one of our scripts: ioredis sends a script's text (EVAL) the first time
 * on a connection, and its SHA-1 (EVALSHA) after that.
 */
function calls(name: string): (bytes: Buffer) => boolean {
  const text = luaScript(name)
  const sha = createHash('sha1').update(text).digest('hex')
  const head = text.slice(0, 60)
  return (bytes) => bytes.includes(sha) || bytes.includes(head)
}
const callsCursor = calls('fenced-cursor')
const callsFold = calls('fenced-fold')

/** A scheduler process of its own: its connections go to `url` (the proxy, for the stalled one). */
function scheduler(
  url: string,
  t: TestRedis,
  lockTtlMs = LOCK_TTL_MS,
): { service: SchedulerService; close(): Promise<void> } {
  const live = new Redis(url)
  const service = createSchedulerService(
    toConfig({ REDIS_URL: url, REDIS_PREFIX: t.prefix, LOG_LEVEL: 'silent' }),
    { live: createLiveHours(live, t.schema), now: () => NOW_AFTER, lockTtlMs },
  )
  return {
    service,
    async close() {
      await service.close()
      live.disconnect()
    },
  }
}

/** Runs the roll-up now, again every 50 ms while another run holds the lock (as the schedule would). */
async function runWhenFree(service: SchedulerService): Promise<unknown> {
  return pollUntil(
    () => service.runNow('rollup'),
    (r) => r !== null,
    { pollMs: 50, timeoutMs: 20_000 },
  )
}

interface RunSummary {
  rolled: { hour: number; rows: number; records: number }[]
  cursor: number | null
}

describe('two roll-up runners racing on the same hours', () => {
  let ref: TestRedis
  let reference: Map<string, Map<string, number>>
  let t: TestRedis
  let proxy: StallProxy | undefined
  const closing: (() => Promise<void>)[] = []

  beforeAll(async () => {
    // The undisturbed run: one runner, the same input, its own prefix.
    ref = await createTestRedis('sched-race-ref')
    await createIndexWriter(ref.redis, ref.schema).apply(events)
    // (the default lock life: on a loaded machine the race tests' short one can lapse in a plain run)
    const one = scheduler(ref.url, ref, 60_000)
    try {
      const res = (await one.service.runNow('rollup')) as RunSummary
      expect(res.rolled.map((h) => h.hour)).toEqual(HOURS)
    } finally {
      await one.close()
    }
    reference = await actualAggregates(ref.redis, ref.schema, dids)
    // It is itself exact: equal to a brute-force count of the rows the events leave.
    expect(sortedEntries(reference)).toEqual(sortedEntries(expectedAggregates(rows)))
  })
  afterAll(async () => {
    await ref.cleanup()
  })
  beforeEach(async () => {
    t = await createTestRedis('sched-race')
    await createIndexWriter(t.redis, t.schema).apply(events)
  })
  afterEach(async () => {
    for (const close of closing.splice(0)) await close()
    await proxy?.close()
    proxy = undefined
    await t.cleanup()
  })

  /** Everything the race left, compared with the undisturbed run. */
  async function outcome(): Promise<AggregateDiff> {
    const actual = await actualAggregates(t.redis, t.schema, dids)
    const diff = diffAggregates(actual, reference)
    expect(diff).toEqual({ ...diff, doubled: 0, lost: 0, extra: 0 })
    expect(sortedEntries(actual)).toEqual(sortedEntries(reference))
    expect(await readRollupCursor(t.redis, t.schema)).toBe(HOURS[3])
    expect(await createLiveHours(t.redis, t.schema).hours()).toEqual([])
    process.stdout.write(
      `[rollup-race] interactions in ${interactionsIn}, rows ${diff.rows} ` +
        `(${diff.interactions} interactions), doubled ${diff.doubled}, lost ${diff.lost}, extra ${diff.extra}\n`,
    )
    return diff
  }

  /** A stalled through the proxy from `stallWhen` on; B runs once A's lock expired; then A's writes land. */
  async function race(stallWhen: (bytes: Buffer) => boolean): Promise<[unknown, RunSummary]> {
    proxy = await startStallProxy(t.url, { stallWhen })
    const a = scheduler(proxy.url, t)
    const b = scheduler(t.url, t)
    closing.push(a.close, b.close)
    const runA = a.service.runNow('rollup')
    // If A ended before the stall (it lost its lock early, say), the failure shows how it ended.
    let ended: unknown
    runA.then(
      (result) => {
        ended = { result }
      },
      (err: Error) => {
        ended = { error: err.message }
      },
    )
    const stalled = await pollUntil(
      async () => proxy?.stalled === true,
      (s) => s || ended !== undefined,
    )
    expect({ stalled, ended }).toEqual({ stalled: true, ended: undefined })
    // Nothing of A's reaches Redis now, its lock extensions included: the lock expires, B takes over.
    const resB = (await runWhenFree(b.service)) as RunSummary
    proxy.resume()
    return [await runA, resB]
  }

  it('a runner stalled before its cursor write is refused there; the other folds every hour once', async () => {
    const [resA, resB] = await race(callsCursor)
    // A folded the first hour, then its held cursor write reached Redis after B's: refused.
    expect(resA).toEqual({ lockLost: 'FencedOutError' })
    // B found no cursor, so it folded the first hour again: every blob already had it.
    expect(resB.rolled.map((h) => h.hour)).toEqual(HOURS)
    expect(resB.cursor).toBe(HOURS[3])
    await outcome()
  })

  it('a runner stalled at its first fold write of the second hour is refused there', async () => {
    let cursorMoved = false
    const [resA, resB] = await race((bytes) => {
      if (callsCursor(bytes)) cursorMoved = true
      else if (cursorMoved && callsFold(bytes)) return true
      return false
    })
    expect(resA).toEqual({ lockLost: 'FencedOutError' })
    // A had finished the first hour (cursor and free), so B starts at the second.
    expect(resB.rolled.map((h) => h.hour)).toEqual(HOURS.slice(1))
    await outcome()
  })

  it('lock expiry mid-merge: the stale runner’s merge write is refused, the other runner’s counts stand', async () => {
    const lockKey = t.schema.schedulerLock('rollup')
    const counter = t.schema.schedulerFenceCounter('rollup')
    const lockA = await acquireLock(t.redis, lockKey, LOCK_TTL_MS, counter)
    expect(lockA?.fence).toBe(1)
    let paused = 0
    let resB: Awaited<ReturnType<typeof runRollup>> | undefined
    const runA = runRollup(t.redis, t.schema, createLiveHours(t.redis, t.schema), {
      now: NOW_AFTER,
      liveWindowHours: 48,
      retentionDays: 90,
      fence: createRollupFence(t.redis, t.schema, lockA?.fence as number),
      chunk: 10_000, // one chunk per hour: the paused merge is A's only write in flight
      // A read the blobs to merge into, then pauses (a GC pause, a stalled host) past its lock's expiry;
      // B takes the lock and rolls up everything meanwhile.
      beforeMerge: async () => {
        if (paused++ > 0) return
        await pollUntil(
          () => t.redis.exists(lockKey),
          (n) => n === 0,
          { pollMs: 20 },
        )
        const lockB = await acquireLock(t.redis, lockKey, 60_000, counter)
        expect(lockB?.fence).toBe(2)
        resB = await runRollup(t.redis, t.schema, createLiveHours(t.redis, t.schema), {
          now: NOW_AFTER,
          liveWindowHours: 48,
          retentionDays: 90,
          fence: createRollupFence(t.redis, t.schema, lockB?.fence as number),
        })
        await lockB?.release()
      },
    })
    await expect(runA).rejects.toBeInstanceOf(FencedOutError)
    expect(paused).toBe(1)
    // B started at the hour A was merging (A had moved the cursor past the hours before it).
    const merging = resB?.rolled[0]?.hour as number
    expect(HOURS).toContain(merging)
    expect(resB?.rolled.map((h) => h.hour)).toEqual(HOURS.filter((h) => h >= merging))
    expect(resB?.rolled[0]?.merged).toBeGreaterThan(0)
    await outcome()
  })
})
