import { DAY_MS, isValidDid } from '@circles/core'
import { hiddenAccounts, type KindCounts } from '@circles/interaction-index'
import {
  emptyKindCounts,
  forEachPackedRecord,
  kindOfIndex,
  SIDE_DIRECTION,
} from '@circles/long-term'
import { LONG_TERM_SIDES, type RedisSchema } from '@circles/redis-schema'
import { pipelineFor } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { readRollupCursor } from './rollup.js'

// Daily snapshots of tracked accounts, read from the long-term aggregates once a day is fully folded:
// exact (the same numbers the long windows show: the roll-up's sides and the backfilled ones, which never
// hold the same rows), and O(tracked accounts), not a scan of the network.
// The price is latency: day D is complete once its last hour left the live window (about 49 h after D
// began plus the roll-up interval). Each run rewrites the last few complete days, so it is idempotent and
// a missed run or a late roll-up heals itself.

export interface Snapshot {
  day: number
  sent: KindCounts
  received: KindCounts
}

export interface SnapshotOptions {
  now: number
  /** Days of snapshots kept. */
  retentionDays: number
  /** Circle requests tracked for this long. @default 7 */
  trackDays?: number
  /** Complete days (re)written per run, newest first. @default 3 */
  days?: number
}

/** Tracked = the admin-managed set plus every account whose circles were asked for recently. */
export async function trackedDids(
  redis: Redis,
  schema: RedisSchema,
  now: number,
  trackDays = 7,
): Promise<string[]> {
  const [set, recent] = await Promise.all([
    redis.smembers(schema.tracked),
    redis.zrangebyscore(schema.circleRequests, now - trackDays * DAY_MS, '+inf'),
  ])
  return [...new Set([...set, ...recent])].filter((d) => isValidDid(d)).sort()
}

/** Adds a day blob's counts by kind to `into`. */
function addBlob(into: KindCounts, blob: Buffer | null): void {
  if (!blob) return
  forEachPackedRecord(blob, (r) => {
    into[kindOfIndex(r.kind)] += r.count
  })
}

/** The last day whose every hour is folded, or null before the first roll-up. */
export function lastCompleteDay(cursor: number | null): number | null {
  return cursor === null ? null : Math.floor((cursor + 1) / 24) - 1
}

export async function runSnapshots(
  redis: Redis,
  schema: RedisSchema,
  opts: SnapshotOptions,
): Promise<{ accounts: number; hidden: number; days: number[] }> {
  const last = lastCompleteDay(await readRollupCursor(redis, schema))
  if (last === null) return { accounts: 0, hidden: 0, days: [] }
  const oldest = Math.floor(opts.now / DAY_MS) - opts.retentionDays
  const days: number[] = []
  for (let d = last; d > last - (opts.days ?? 3) && d >= oldest; d--) days.push(d)
  const dids = await trackedDids(redis, schema, opts.now, opts.trackDays)
  let hidden = 0
  for (let i = 0; i < dids.length; i += 500) {
    const batch = dids.slice(i, i + 500)
    const read = pipelineFor(redis)
    for (const did of batch) {
      for (const day of days) {
        for (const side of LONG_TERM_SIDES) read.hgetBuffer(schema.longTerm(did, side), String(day))
      }
    }
    const replies = (await read.exec()) ?? []
    // Asked just before the writes: a snapshot written after the forget step deleted it would stay for
    // the snapshot retention (the tracked lists no longer name a forgotten account, but this run read
    // them before).
    const skip = await hiddenAccounts(redis, schema, batch)
    hidden += skip.size
    const write = pipelineFor(redis)
    let j = 0
    for (const did of batch) {
      const key = schema.snapshot(did)
      if (skip.has(did)) {
        j += LONG_TERM_SIDES.length * days.length
        continue
      }
      for (const day of days) {
        const snap: Snapshot = { day, sent: emptyKindCounts(), received: emptyKindCounts() }
        for (const side of LONG_TERM_SIDES) {
          const [err, blob] = replies[j++] as [Error | null, Buffer | null]
          if (err) throw err
          addBlob(snap[SIDE_DIRECTION[side]], blob)
        }
        write.hset(key, String(day), JSON.stringify(snap))
      }
      write.pexpireat(key, ((days[0] ?? last) + opts.retentionDays + 1) * DAY_MS)
    }
    for (const [err] of (await write.exec()) ?? []) if (err) throw err
  }
  return { accounts: dids.length - hidden, hidden, days }
}

/** Snapshots of one account, newest first (what the API serves). */
export async function readSnapshots(
  redis: Redis,
  schema: RedisSchema,
  did: string,
): Promise<Snapshot[]> {
  const all = await redis.hgetall(schema.snapshot(did))
  return Object.values(all)
    .map((v) => JSON.parse(v) as Snapshot)
    .sort((a, b) => b.day - a.day)
}
