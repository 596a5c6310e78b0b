import { HOUR_MS } from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import { type FoldOptions, type FoldResult, foldHour } from './fold.js'
import { type ForgetOptions, type ForgetResult, runForget } from './forget.js'
import { loadHour } from './hour-table.js'
import type { LiveHours } from './live-source.js'

// Roll-up: fold one completed hour of the live index into the long-term daily aggregates, exactly once.
//
// Exactly-once argument (see README): hours are folded one at a time, in increasing order, by one runner
// (a lock). Each (account, direction, day) blob carries a mark = 1 + the last hour-of-day folded into it,
// written in the same HSET as the counts. Folding hour H into a blob whose mark is already >= H's skips it,
// so a run that crashed half-way can simply be run again: blobs it reached are skipped, the others get H.
// A merge is written only over the blob it was computed from (fold.ts), so two runners on one hour cannot
// lose or double anything either. Only after every blob has H does the cursor move to H (the per-hour
// marker; it only moves forward), and only after that is the hour freed in the live index; a crash between
// the two just frees it on the next run. Nothing is read from the live index after it was freed, and
// nothing is freed before it was folded. Every one of these writes is fenced (fence.ts): a runner that lost
// its lock is refused at its next write.

export type RollupOptions = FoldOptions

export interface HourRollupResult extends FoldResult {
  rows: number
  /** Rows skipped as malformed (bad DID, kind or count). */
  skipped: number
  /** Time spent reading the hour from the live index, and folding it into the aggregates. */
  loadMs: number
  foldMs: number
}

/** Loads, folds, marks and frees one hour. Safe to call again for the same hour after a crash. */
export async function rollUpHour(
  redis: Redis,
  schema: RedisSchema,
  source: LiveHours,
  hour: number,
  opts: RollupOptions,
): Promise<HourRollupResult> {
  const t0 = performance.now()
  const { table, skipped } = await loadHour(source, hour, opts.onProgress)
  const t1 = performance.now()
  const folded = await foldHour(redis, schema, hour, table, opts)
  const loadMs = Math.round(t1 - t0)
  const foldMs = Math.round(performance.now() - t1)
  // The per-hour marker: every hour up to the cursor is folded. Hours go up one at a time under the lock.
  await opts.fence.moveCursor(hour)
  await source.freeHour(hour, opts.fence)
  return { ...folded, rows: table.n, skipped, loadMs, foldMs }
}

/** The last hour folded, or null before the first roll-up. */
export async function readRollupCursor(redis: Redis, schema: RedisSchema): Promise<number | null> {
  const v = await redis.get(schema.rollupCursor)
  if (v === null) return null
  const n = Number(v)
  return Number.isSafeInteger(n) ? n : null
}

export interface RollupRunResult {
  /** The forget step, run first (forget.ts). */
  forgot: ForgetResult
  rolled: HourRollupResult[]
  /** Hours that were already folded (a crash between marker and free) and were only freed now. */
  freed: number[]
  cursor: number | null
}

/**
 * Forgets the accounts queued to be forgotten, then folds every hour that has left the live window, oldest
 * first. `beforeHour` is called before each hour (the job extends its lock there).
 */
export async function runRollup(
  redis: Redis,
  schema: RedisSchema,
  source: LiveHours,
  opts: RollupOptions & {
    now: number
    liveWindowHours: number
    beforeHour?: (hour: number) => Promise<void>
    /** Test hooks of the forget step's DID table reclaim. */
    tableHooks?: ForgetOptions['tableHooks']
  },
): Promise<RollupRunResult> {
  // First: a fold reads the live index, which the indexer purged before queueing the account, so nothing
  // folded after this step can hold what was purged (forget.ts).
  const forgot = await runForget(redis, schema, {
    fence: opts.fence,
    now: opts.now,
    onProgress: opts.onProgress,
    tableHooks: opts.tableHooks,
  })
  // The live window is the current hour and the `liveWindowHours - 1` before it (the reader's definition),
  // so hour H has left it once the current hour is H + liveWindowHours.
  const limit = Math.floor(opts.now / HOUR_MS) - opts.liveWindowHours + 1
  let cursor = await readRollupCursor(redis, schema)
  const rolled: HourRollupResult[] = []
  const freed: number[] = []
  const hours = (await source.hours()).filter((h) => h < limit).sort((a, b) => a - b)
  for (const hour of hours) {
    await opts.beforeHour?.(hour)
    if (cursor !== null && hour <= cursor) {
      await source.freeHour(hour, opts.fence)
      freed.push(hour)
      continue
    }
    rolled.push(await rollUpHour(redis, schema, source, hour, opts))
    cursor = hour
  }
  return { forgot, rolled, freed, cursor }
}
