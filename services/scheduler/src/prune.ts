import { DAY_MS } from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import { scanPrimaries } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { sweepDidTable, type TableSweepOptions, type TableSweepResult } from './table-sweep.js'

// Pruning of what does not expire by itself. Long-term and snapshot hashes carry an EXPIREAT pushed out
// at each write, so an account that goes quiet disappears whole; but an active account's hash keeps old
// day fields until they are deleted here. Circle requests older than the tracking window leave the zset.
// Last, a slice of the DID table: entries of accounts with no data left (table-sweep.ts). It comes after
// the long-term day fields, which it relies on: a partner's field that names such an account is gone.

export interface PruneOptions {
  now: number
  retentionDays: number
  snapshotRetentionDays: number
  /** Circle requests tracked for snapshots this long. @default 7 */
  trackDays?: number
  /** Called every SCAN page (the job extends its lock there). */
  onPage?: () => Promise<void>
  /** The DID table sweep (under the prune's fence); absent: the table is not swept. */
  tableSweep?: TableSweepOptions
}

export interface PruneResult {
  longTermKeys: number
  longTermFields: number
  snapshotKeys: number
  snapshotFields: number
  circleRequests: number
  /** The DID table sweep's counts (absent when not swept). */
  didTable?: TableSweepResult
}

/** Deletes day fields older than `oldestDay` from every hash matching `pattern`. */
async function pruneDayFields(
  redis: Redis,
  pattern: string,
  oldestDay: number,
  onPage?: () => Promise<void>,
): Promise<{ keys: number; fields: number }> {
  let keys = 0
  let fields = 0
  for await (const { node, keys: page } of scanPrimaries(redis, pattern)) {
    if (page.length === 0) continue
    keys += page.length
    const read = node.pipeline()
    for (const key of page) read.hkeys(key)
    const replies = (await read.exec()) ?? []
    const del = node.pipeline()
    let n = 0
    replies.forEach(([err, names], i) => {
      if (err) return
      const old = (names as string[]).filter((f) => Number(f) < oldestDay)
      if (old.length > 0) {
        del.hdel(page[i] as string, ...old)
        n += old.length
      }
    })
    if (n > 0) await del.exec()
    fields += n
    await onPage?.()
  }
  return { keys, fields }
}

export async function runPrune(
  redis: Redis,
  schema: RedisSchema,
  opts: PruneOptions,
): Promise<PruneResult> {
  const today = Math.floor(opts.now / DAY_MS)
  const lt = await pruneDayFields(
    redis,
    schema.longTermPattern,
    today - opts.retentionDays,
    opts.onPage,
  )
  const snap = await pruneDayFields(
    redis,
    schema.snapshotPattern,
    today - opts.snapshotRetentionDays,
    opts.onPage,
  )
  const circleRequests = await redis.zremrangebyscore(
    schema.circleRequests,
    '-inf',
    `(${opts.now - (opts.trackDays ?? 7) * DAY_MS}`,
  )
  const didTable = opts.tableSweep
    ? await sweepDidTable(redis, schema, today, opts.now, opts.tableSweep)
    : undefined
  return {
    longTermKeys: lt.keys,
    longTermFields: lt.fields,
    snapshotKeys: snap.keys,
    snapshotFields: snap.fields,
    circleRequests,
    ...(didTable ? { didTable } : {}),
  }
}
