import { isValidDid } from '@circles/core'
import { LONG_TERM_SIDES, type RedisSchema } from '@circles/redis-schema'
import { pipelineFor } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { execFenced, type RollupFence, type RollupPipeline, withRollupScripts } from './fence.js'
import { forgetLongTerm, type LongTermForgetResult } from './forget-blobs.js'
import { type CacheForgetResult, forgetCaches } from './forget-caches.js'
import { forgetTableEntries, type ReclaimHooks, recheckReclaimed } from './forget-table.js'

// The forget step (issue 14): everything Redis holds about an account that was deleted, taken down or
// opted out, beyond the 48-hour index, which the indexer has purged before it queued the account in
// `schema.forgetQueue` (DID -> ms of the purge). It runs at the start of every roll-up run, under the
// roll-up's lock and fence, so an account is forgotten at most one roll-up interval (ROLLUP_EVERY_MS,
// 5 min by default) after it was queued, plus the end of a run in progress. With an empty queue it costs
// one ZRANGE, so a shorter interval costs nothing more than the roll-up's own check for hours.
//
// Per batch of queued accounts, in this order:
//   1. its id leaves every partner's day blobs (forget-blobs.ts), then its own long-term hashes go (the
//      roll-up's and the backfill's): a run that dies in between finds its own hashes, which say where to
//      look, next time;
//   2. caches and lists: snapshots, profile, handle, avatar, cached circles, tracked, circle requests, its
//      backfill state (which would say its repo is done);
//   3. its DID table entry, once it has no data left (forget-table.ts);
//   4. it leaves the queue, only at the score read: a purge meanwhile keeps it queued for the next run.
// Then every cached circle is invalidated: one of someone else's may list it in a long window. Before the
// queue, the ids reclaimed in the last two days are looked up again (forget-table.ts: an entry written
// back by a create the purge mark refused is reclaimed again).
//
// Why under the roll-up's lock: a fold of an hour read before the purge would write the account back into
// the blobs. The runner that holds the lock folds only after this step, from a live index already purged;
// a stale runner is refused at its next write, fold or table entry, by the fence this step claims.

export interface ForgetOptions {
  fence: RollupFence
  now: number
  /** Queued accounts per batch (one SCAN of the circle caches each). @default 500 */
  batch?: number
  /** Called between steps (the job extends its lock there). */
  onProgress?: () => Promise<void>
  /** Test hooks inside the DID table reclaim. */
  tableHooks?: ReclaimHooks
}

export interface ForgetResult extends LongTermForgetResult, CacheForgetResult {
  /** Accounts forgotten and taken off the queue. */
  accounts: number
  /** Queue members that are not DIDs: taken off the queue, nothing else done. */
  invalid: number
  /** Accounts purged again while they were being forgotten: left queued for the next run. */
  requeued: number
  /** Accounts whose DID table entry is gone; entries HDEL found; accounts that kept theirs (have data). */
  tableReclaimed: number
  tableEntriesDeleted: number
  tableKept: number
  /** Accounts that had data again at the reclaim's second check, whose entry was written back. */
  tablePutBack: number
  /** Recently reclaimed ids looked up again, and entries found back without data and reclaimed again. */
  recheckedIds: number
  reclaimedAgain: number
  ms: number
}

function emptyResult(): ForgetResult {
  return {
    accounts: 0,
    invalid: 0,
    requeued: 0,
    partners: 0,
    blobsRewritten: 0,
    recordsRemoved: 0,
    partnersUnknown: 0,
    badBlobs: 0,
    keysDeleted: 0,
    listMembers: 0,
    tableReclaimed: 0,
    tableEntriesDeleted: 0,
    tableKept: 0,
    tablePutBack: 0,
    recheckedIds: 0,
    reclaimedAgain: 0,
    ms: 0,
  }
}

/** Adds the numeric fields of `part` to `into`. */
function add<T extends object>(into: T, part: Partial<T>): void {
  for (const [k, v] of Object.entries(part)) {
    const rec = into as Record<string, number>
    rec[k] = (rec[k] ?? 0) + (v as number)
  }
}

/** Deletes the accounts' own long-term hashes, behind the fence; returns how many keys existed. */
async function forgetOwnLongTerm(
  redis: Redis,
  schema: RedisSchema,
  fence: RollupFence,
  dids: readonly string[],
): Promise<number> {
  const pipe = pipelineFor(withRollupScripts(redis)) as RollupPipeline
  for (const d of dids) {
    for (const side of LONG_TERM_SIDES) {
      const key = schema.longTerm(d, side)
      pipe.rollupFree(fence.keyFor(key), key, fence.number)
    }
  }
  let n = 0
  for (const r of await execFenced(pipe)) n += r as number
  return n
}

/** Forgets one batch of queue entries ([member, score as read]). */
async function forgetBatch(
  redis: Redis,
  schema: RedisSchema,
  batch: readonly [string, string][],
  opts: ForgetOptions,
  result: ForgetResult,
): Promise<void> {
  const { fence } = opts
  const dids = batch.map(([m]) => m).filter((m) => isValidDid(m))
  await fence.claim()
  add(result, await forgetLongTerm(redis, schema, fence, dids, { onProgress: opts.onProgress }))
  result.keysDeleted += await forgetOwnLongTerm(redis, schema, fence, dids)
  await opts.onProgress?.()
  add(result, await forgetCaches(redis, schema, dids, opts.onProgress))
  const table = await forgetTableEntries(redis, schema, fence, dids, opts.now, opts.tableHooks)
  result.tableReclaimed += table.reclaimed
  result.tableEntriesDeleted += table.entriesDeleted
  result.tableKept += table.kept
  result.tablePutBack += table.putBack

  const queue = schema.forgetQueue
  const pipe = withRollupScripts(redis).pipeline() as RollupPipeline
  for (const [member, score] of batch) {
    pipe.forgetDequeue(fence.keyFor(queue), queue, fence.number, member, score)
  }
  const replies = await execFenced(pipe)
  batch.forEach(([member], i) => {
    if (!isValidDid(member)) result.invalid++
    else if (replies[i] === 1) result.accounts++
    else result.requeued++
  })
}

/** Forgets every account in the forget queue (see above). Throws FencedOutError for a stale runner. */
export async function runForget(
  redis: Redis,
  schema: RedisSchema,
  opts: ForgetOptions,
): Promise<ForgetResult> {
  const started = performance.now()
  const result = emptyResult()
  const size = opts.batch ?? 500
  // Members met in this run: one purged again meanwhile stays queued (with a later score, so it moves
  // back) and is left for the next run rather than forgotten twice here.
  const seen = new Set<string>()
  const recheck = await recheckReclaimed(redis, schema, opts.fence, opts.now)
  result.recheckedIds = recheck.rechecked
  result.reclaimedAgain = recheck.table.reclaimed
  for (;;) {
    const flat = await redis.zrange(schema.forgetQueue, 0, size - 1, 'WITHSCORES')
    const batch: [string, string][] = []
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const member = flat[i] as string
      if (!seen.has(member)) batch.push([member, flat[i + 1] as string])
    }
    if (batch.length === 0) break
    for (const [member] of batch) seen.add(member)
    await forgetBatch(redis, schema, batch, opts, result)
    await opts.onProgress?.()
  }
  if (result.accounts > 0) {
    // Cached circles made before now may list a forgotten account (a long window read its blobs): the
    // API serves none made under an older version, and drops its in-process copies on the message.
    await redis.multi().incr(schema.optOutsVersion).publish(schema.optOutsChannel, 'changed').exec()
  }
  result.ms = Math.round(performance.now() - started)
  return result
}
