import { HOUR_MS } from '@circles/core'
import { isCompactDayBlob, plainDayBlob } from '@circles/long-term'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { RollupFence } from '../src/fence.js'
import type { HourRow } from '../src/live-source.js'
import { readRollupCursor, rollUpHour, runRollup } from '../src/rollup.js'
import {
  actualAggregates,
  expectedAggregates,
  makeDids,
  makeHours,
  memoryLiveHours,
  newRollupFence,
  sortedEntries,
} from './helpers.js'

// Hours late in a day three days ago, crossing into the next day.
const DAY0 = Math.floor(Date.now() / 86_400_000) - 3
const H0 = DAY0 * 24 + 20
const HOURS = [H0, H0 + 1, H0 + 2, H0 + 3, H0 + 5]
const NOW_AFTER_ALL = (H0 + 5 + 48) * HOUR_MS + 1

function clone(data: Map<number, HourRow[]>): Map<number, HourRow[]> {
  return new Map([...data].map(([h, rows]) => [h, rows.map((r) => ({ ...r }))]))
}

describe('roll-up', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('sched-rollup')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  const dids = makeDids(300)
  const data = makeHours(HOURS, 2000, dids)
  const expected = expectedAggregates(data)

  it('folds every hour that left the live window, exactly, and frees it', async () => {
    const live = memoryLiveHours(clone(data))
    // Only the first two hours have left the window at this time.
    const early = await runRollup(t.redis, t.schema, live, {
      now: (H0 + 1 + 48) * HOUR_MS,
      liveWindowHours: 48,
      retentionDays: 90,
      fence: await newRollupFence(t.redis, t.schema),
    })
    expect(early.rolled.map((r) => r.hour)).toEqual([H0, H0 + 1])
    expect(live.freed).toEqual([H0, H0 + 1])
    const res = await runRollup(t.redis, t.schema, live, {
      now: NOW_AFTER_ALL,
      liveWindowHours: 48,
      retentionDays: 90,
      fence: await newRollupFence(t.redis, t.schema),
    })
    expect(res.rolled.map((r) => r.hour)).toEqual([H0 + 2, H0 + 3, H0 + 5])
    expect(await readRollupCursor(t.redis, t.schema)).toBe(H0 + 5)
    expect(live.freed).toEqual(HOURS)
    const actual = await actualAggregates(t.redis, t.schema, dids)
    expect(sortedEntries(actual)).toEqual(sortedEntries(expected))
    // Hours of one day merge into one blob per (account, direction, day): two days at most per account.
    const fields = await t.redis.hkeys(t.schema.longTerm(dids[0] as string, 's'))
    expect(fields.length).toBeGreaterThan(0)
    for (const f of fields) expect([String(DAY0), String(DAY0 + 1)]).toContain(f)
  })

  it('a Redis of plain day blobs (written before the compact layout) reads and folds as before', async () => {
    const live = memoryLiveHours(clone(data))
    const opts = { liveWindowHours: 48, retentionDays: 90 }
    // The first three hours (of DAY0), then every blob rewritten plain: what a Redis written by the
    // earlier code holds, marks included.
    await runRollup(t.redis, t.schema, live, {
      ...opts,
      now: (H0 + 2 + 48) * HOUR_MS,
      fence: await newRollupFence(t.redis, t.schema),
    })
    let plain = 0
    for (const did of dids) {
      for (const side of ['s', 'r'] as const) {
        const key = t.schema.longTerm(did, side)
        for (const [day, blob] of Object.entries(await t.redis.hgetallBuffer(key))) {
          expect(isCompactDayBlob(blob)).toBe(true)
          await t.redis.hset(key, day, plainDayBlob(blob))
          plain++
        }
      }
    }
    expect(plain).toBeGreaterThan(300)
    const early = new Map([...data].filter(([h]) => h <= H0 + 2))
    expect(sortedEntries(await actualAggregates(t.redis, t.schema, dids))).toEqual(
      sortedEntries(expectedAggregates(early)),
    )
    // The next hours: H0 + 3 merges into the plain blobs of DAY0 (their marks read the same) and leaves
    // them compact; the blobs it does not touch stay plain and read as before.
    await runRollup(t.redis, t.schema, live, {
      ...opts,
      now: NOW_AFTER_ALL,
      fence: await newRollupFence(t.redis, t.schema),
    })
    expect(sortedEntries(await actualAggregates(t.redis, t.schema, dids))).toEqual(
      sortedEntries(expected),
    )
    const layouts = { compact: 0, plain: 0 }
    for (const did of dids) {
      const blob = await t.redis.hgetBuffer(t.schema.longTerm(did, 's'), String(DAY0))
      if (blob) layouts[isCompactDayBlob(blob) ? 'compact' : 'plain']++
    }
    expect(layouts.compact).toBeGreaterThan(0)
    expect(layouts.plain).toBeGreaterThan(0)
  })

  it('a crash half-way through an hour, then a rerun, counts every interaction exactly once', async () => {
    const live = memoryLiveHours(clone(data), 200)
    const opts = { now: NOW_AFTER_ALL, liveWindowHours: 48, retentionDays: 90, chunk: 50 }
    // Fold the first hours, then crash in the middle of H0+3 (H0+2 of the same day is already merged in).
    let crashed = false
    await expect(
      runRollup(t.redis, t.schema, live, {
        ...opts,
        fence: await newRollupFence(t.redis, t.schema),
        onChunk: async (done) => {
          if (!crashed && done >= 200 && (await readRollupCursor(t.redis, t.schema)) === H0 + 2) {
            crashed = true
            throw new Error('simulated crash')
          }
        },
      }),
    ).rejects.toThrow('simulated crash')
    expect(await readRollupCursor(t.redis, t.schema)).toBe(H0 + 2)
    expect(live.freed).toEqual([H0, H0 + 1, H0 + 2])
    const partial = await actualAggregates(t.redis, t.schema, dids)
    expect(sortedEntries(partial)).not.toEqual(sortedEntries(expected))

    // The rerun is a new lock holder, with a new fencing number.
    const res = await runRollup(t.redis, t.schema, live, {
      ...opts,
      fence: await newRollupFence(t.redis, t.schema),
    })
    expect(res.rolled.map((r) => r.hour)).toEqual([H0 + 3, H0 + 5])
    expect(res.rolled[0]?.alreadyDone).toBeGreaterThan(0)
    const actual = await actualAggregates(t.redis, t.schema, dids)
    expect(sortedEntries(actual)).toEqual(sortedEntries(expected))
  })

  it('refolding an hour whose blobs are all written (crash before the marker) changes nothing', async () => {
    const live = memoryLiveHours(clone(data))
    const opts = { retentionDays: 90, fence: await newRollupFence(t.redis, t.schema) }
    await rollUpHour(t.redis, t.schema, live, H0, opts)
    const before = sortedEntries(await actualAggregates(t.redis, t.schema, dids))
    // As if the marker and the free were lost: the same rows come again.
    const again = memoryLiveHours(new Map([[H0, (data.get(H0) ?? []).map((r) => ({ ...r }))]]))
    const res = await rollUpHour(t.redis, t.schema, again, H0, opts)
    expect(res.created + res.merged).toBe(0)
    expect(res.alreadyDone).toBeGreaterThan(0)
    expect(sortedEntries(await actualAggregates(t.redis, t.schema, dids))).toEqual(before)
  })

  it('a crash between the marker and the free only frees the hour on the next run', async () => {
    const inner = memoryLiveHours(clone(data))
    let failFree = true
    const live = {
      ...inner,
      async freeHour(hour: number, fence: RollupFence) {
        if (failFree) {
          failFree = false
          throw new Error('simulated crash before free')
        }
        await inner.freeHour(hour, fence)
      },
    }
    const opts = { now: NOW_AFTER_ALL, liveWindowHours: 48, retentionDays: 90 }
    await expect(
      runRollup(t.redis, t.schema, live, {
        ...opts,
        fence: await newRollupFence(t.redis, t.schema),
      }),
    ).rejects.toThrow('before free')
    expect(await readRollupCursor(t.redis, t.schema)).toBe(H0)
    const res = await runRollup(t.redis, t.schema, live, {
      ...opts,
      fence: await newRollupFence(t.redis, t.schema),
    })
    expect(res.freed).toEqual([H0])
    expect(res.rolled.map((r) => r.hour)).toEqual([H0 + 1, H0 + 2, H0 + 3, H0 + 5])
    const actual = await actualAggregates(t.redis, t.schema, dids)
    expect(sortedEntries(actual)).toEqual(sortedEntries(expected))
  })

  it('skips malformed rows and counts them', async () => {
    const rows: HourRow[] = [
      { author: 'not-a-did', subject: dids[0] as string, kind: 'like', count: 1 },
      { author: dids[1] as string, subject: dids[0] as string, kind: 'poke', count: 1 },
      { author: dids[1] as string, subject: dids[0] as string, kind: 'like', count: -3 },
      { author: dids[1] as string, subject: dids[0] as string, kind: 'like', count: 2 },
    ]
    const live = memoryLiveHours(new Map([[H0, rows]]))
    const res = await rollUpHour(t.redis, t.schema, live, H0, {
      retentionDays: 90,
      fence: await newRollupFence(t.redis, t.schema),
    })
    expect(res.skipped).toBe(3)
    expect(res.rows).toBe(1)
    expect(res.records).toBe(2)
  })
})
