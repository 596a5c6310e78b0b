import { HOUR_MS } from '@circles/core'
import {
  accountLogKeys,
  DidCache,
  didId,
  didTableEntries,
  rememberDids,
  resolveIds,
  WINDOW_HOURS,
} from '@circles/interaction-index'
import { LONG_TERM_SIDES, type RedisSchema } from '@circles/redis-schema'
import { groupByNode } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { execFencedByNode, type Fence } from './fence.js'

// The DID table forgets (issue 14): the entry (id -> DID) of an account goes once it has no data left: no
// live-index log, no long-term hash (the roll-up's or a backfill's: an account known only from repo
// history has data). Two callers: the forget step (forgotten accounts, under the roll-up's
// lock and fence) and the prune's sweep (accounts that went quiet, under the prune's; table-sweep.ts).
// What makes this hard is the index writer, which remembers per process that it wrote an account's entry
// and then skips the HSET: a create arriving after the HDEL would leave records whose id nobody can
// resolve. The order here, with the writer's side in
// packages/interaction-index/src/write/table-memo.ts (the proof is there):
//   1. check: accounts without data;   2. HDEL their entries (fenced);   3. INCR `didTableEpoch`;
//   4. check them again, and write back the entry of any that has data now (not fenced: an entry is
//      needed whoever finds that, and is the same whoever writes it).
// A create that reached Redis before step 4 is seen there; one after it finds the epoch moved when the
// writer reads it after its appends, and the writer writes its entries again. The writer does not read
// the epoch before building a call: a read there would not tell what happens between it and the appends.
// Accounts that have data at step 1 keep their entry, written again in case an earlier run died between
// its HDEL and its step 4 (the account is still queued then, or pending in the sweep, and comes back here).
// Two reclaims of one account at once (the forget step and the sweep, or a stale runner and its successor)
// need no exclusion: each HDEL is followed by its own INCR and second check, which is all the argument uses.
//
// An entry can also come back without data: the writer sends an account's entry before it knows whether
// the create is refused, so an old event delivered again after the purge (the purge mark refuses it)
// writes it. Such a create is at most the live window old, so for that long after a reclaim the id stays
// in `forgetRechecks`, and each run reclaims again any of those entries it finds (`recheckReclaimed`).

export interface TableForgetResult {
  /** Accounts whose entry is gone, and the entries HDEL found. */
  reclaimed: number
  entriesDeleted: number
  /** Accounts with data at the first check (entry kept), and at the second (entry written back). */
  kept: number
  putBack: number
}

/** Test hooks: a create lands here to race the reclaim. */
export interface ReclaimHooks {
  /** After the first check, before the HDEL. */
  afterCheck?: () => Promise<void>
  /** After the HDEL, before the epoch moves and the second check. */
  afterDelete?: () => Promise<void>
}

export interface ReclaimOptions {
  hooks?: ReclaimHooks
  /**
   * Spill logs of earlier hours do not count as data (`accountLogKeys`): for a caller that knows nobody
   * reads them any more (table-sweep.ts). @default every hour a writer may have spilled into
   */
  spillFromHour?: number
}

/** The accounts of `dids` that hold live-index logs or long-term hashes. */
async function withData(
  redis: Redis,
  schema: RedisSchema,
  dids: readonly string[],
  nowMs: number,
  spillFromHour?: number,
): Promise<Set<string>> {
  const out = new Set<string>()
  // A pipeline per cluster node (one for one Redis): one spanning nodes is refused.
  const groups = groupByNode(redis, dids, (d) => schema.accountLog(d))
  await Promise.all(
    groups.map(async (group) => {
      const pipe = redis.pipeline()
      for (const d of group) {
        // One EXISTS per account: every key named has its hash tag (one slot).
        pipe.exists(
          ...accountLogKeys(schema, d, nowMs, spillFromHour),
          ...LONG_TERM_SIDES.map((side) => schema.longTerm(d, side)),
        )
      }
      const replies = (await pipe.exec()) ?? []
      group.forEach((d, i) => {
        const [err, n] = replies[i] ?? [null, 0]
        if (err) throw err
        if ((n as number) > 0) out.add(d)
      })
    }),
  )
  return out
}

/**
 * Reclaims the DID table entries of those of `dids` that have no data left (see above), behind `fence`;
 * returns the counts and the accounts whose entry is gone.
 */
export async function reclaimTableEntries(
  redis: Redis,
  schema: RedisSchema,
  fence: Fence,
  dids: readonly string[],
  nowMs: number,
  opts: ReclaimOptions = {},
): Promise<TableForgetResult & { gone: string[] }> {
  const { hooks = {}, spillFromHour } = opts
  const result = { reclaimed: 0, entriesDeleted: 0, kept: 0, putBack: 0, gone: [] as string[] }
  if (dids.length === 0) return result
  const first = await withData(redis, schema, dids, nowMs, spillFromHour)
  result.kept = first.size
  await rememberDids(redis, schema, first)
  const empty = dids.filter((d) => !first.has(d))
  if (empty.length === 0) return result
  await hooks.afterCheck?.()

  await fence.claim()
  const buckets = [...didTableEntries(empty)].map(([bucket, entries]) => ({
    key: schema.didTable(bucket),
    ids: entries.filter((_, i) => i % 2 === 0) as Buffer[],
  }))
  const deleted = await execFencedByNode(
    redis,
    buckets,
    (b) => b.key,
    (pipe, b) => pipe.rollupHdel(fence.keyFor(b.key), b.key, fence.number, ...b.ids),
  )
  for (const n of deleted) result.entriesDeleted += n as number
  await hooks.afterDelete?.()

  // Once per batch, even when HDEL found nothing: a run that died after its HDEL did not move it.
  await redis.incr(schema.didTableEpoch)
  const again = await withData(redis, schema, empty, nowMs, spillFromHour)
  await rememberDids(redis, schema, again)
  result.putBack = again.size
  result.gone = empty.filter((d) => !again.has(d))
  result.reclaimed = result.gone.length
  return result
}

/** The forget step's reclaim: `reclaimTableEntries`, and the ids it reclaimed are rechecked (see above). */
export async function forgetTableEntries(
  redis: Redis,
  schema: RedisSchema,
  fence: Fence,
  dids: readonly string[],
  nowMs: number,
  hooks: ReclaimHooks = {},
): Promise<TableForgetResult> {
  const { gone, ...result } = await reclaimTableEntries(redis, schema, fence, dids, nowMs, {
    hooks,
  })
  if (gone.length > 0) {
    await redis.zadd(
      schema.forgetRechecks,
      ...gone.flatMap((d) => [nowMs, didId(d).toString('hex')]),
    )
  }
  return result
}

/** How long a reclaimed id is looked up again: a refused create is at most the live window old. */
const RECHECK_MS = (WINDOW_HOURS + 1) * HOUR_MS

/**
 * Reclaims again the entries of recently reclaimed ids that came back (see above). Returns the ids looked
 * up, and the table outcome for those whose entry was there.
 */
export async function recheckReclaimed(
  redis: Redis,
  schema: RedisSchema,
  fence: Fence,
  nowMs: number,
  hooks: ReclaimHooks = {},
): Promise<{ rechecked: number; table: TableForgetResult }> {
  await redis.zremrangebyscore(schema.forgetRechecks, '-inf', `(${nowMs - RECHECK_MS}`)
  const ids = await redis.zrange(schema.forgetRechecks, 0, -1)
  const keys = ids
    .filter((h) => /^[0-9a-f]{16}$/.test(h))
    .map((h) => Buffer.from(h, 'hex').toString('latin1'))
  const back = keys.length === 0 ? new Map() : await resolveIds(redis, schema, keys, new DidCache())
  const table = await forgetTableEntries(redis, schema, fence, [...back.values()], nowMs, hooks)
  return { rechecked: ids.length, table }
}
