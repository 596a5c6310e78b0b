import { type EventColumns, isPurgeStatus, isValidDid, type PrivacyEvent } from '@circles/core'
import { changeOptOuts, clearPurgeMarks, optOutChanges } from '../opt-outs.js'
import type { WriterContext } from './context.js'
import { purge } from './purge.js'
import { applySegment } from './segment.js'
import type { ApplyStats } from './stats.js'

/**
 * Applies a call's events: its creates and deletes in segments cut at each purge (everything before a
 * purge is applied before it, so it is purged too), then the reactivations and the opt-out events.
 */
export async function applyEvents(
  ctx: WriterContext,
  cols: EventColumns,
  stats: ApplyStats,
  onSent: () => void,
): Promise<void> {
  const { redis, schema } = ctx
  let from = 0
  let staleKeys: string[] = []
  const privacy: PrivacyEvent[] = []
  const reactivated: string[] = []
  for (const [i, e] of cols.others) {
    if (e.type === 'block' || e.type === 'label') privacy.push(e)
    else if (e.type === 'identity') {
      stats.identities++
      // which caches it makes stale is the caller's to say; they go with the segment's writes
      if (!isValidDid(e.did)) stats.invalid++
      else if (ctx.staleKeysOf) for (const key of ctx.staleKeysOf(e)) staleKeys.push(key)
    } else if (e.type === 'account' && isPurgeStatus(e)) {
      // Everything before the purge first, so it is purged too.
      await applySegment(ctx, cols, from, i, stats, staleKeys, () => {})
      from = i + 1
      staleKeys = []
      stats.purges++
      await purge(ctx, e.did, e.time)
      // deleted again after a reactivation in the same batch: the mark stays
      const k = reactivated.indexOf(e.did)
      if (k >= 0) reactivated.splice(k, 1)
    } else if (e.type === 'account' && e.active && isValidDid(e.did)) {
      // Reactivated (or a takedown reversed): it starts clean, served again (a purge mark reads as
      // deleted). Its earlier interactions were purged; an opt-out's mark stays (the account is still out).
      reactivated.push(e.did)
    }
  }
  await applySegment(ctx, cols, from, cols.length, stats, staleKeys, onSent)
  await clearPurgeMarks(redis, schema, reactivated, 'deletion')
  if (privacy.length > 0) {
    // Who is opted out moves here; the indexer service purges or reopens their index after the call.
    const { changes, invalid } = optOutChanges(privacy)
    stats.invalid += invalid
    stats.optOutEvents += changes.length
    for (const o of await changeOptOuts(redis, schema, changes)) if (o.changed) stats.optOutsMoved++
  }
}
