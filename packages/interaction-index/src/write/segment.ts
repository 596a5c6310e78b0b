import type { EventColumns } from '@circles/core'
import { WireError } from '@circles/redis-wire'
import type { WriterContext } from './context.js'
import { Phase } from './ops.js'
import { SegmentPlan } from './plan.js'
import { type Removal, revokeDeleted, revokeRefused } from './revokes.js'
import { sendPhase } from './send.js'
import type { ApplyStats } from './stats.js'
import { writeTableAgain } from './table-memo.js'

/**
 * Applies creates and deletes. Phase M, sent before the first await (`onSent` then lets the next call
 * send its own, so that consecutive calls reach Redis in call order): every operation of every account
 * in stream order (plan.ts). Phase C, after M's outcome: revoke the side of a create that the other side
 * refused (deleted before it arrived, or an account purged), and the subject side of what the deletes
 * marked (revokes.ts).
 */
export async function applySegment(
  ctx: WriterContext,
  cols: EventColumns,
  /** The segment's rows (creates and deletes; other rows are skipped) */
  from: number,
  to: number,
  stats: ApplyStats,
  /** Cache keys identity events made stale (profiles, handle resolutions): deleted with the segment. */
  staleKeys: readonly string[],
  onSent: () => void,
): Promise<void> {
  // what is remembered as written is consulted below: true of the Redis of this connection only
  const lossesAtStart = ctx.losses
  const nowMs = ctx.now()
  const p = new SegmentPlan(ctx, cols, from, to, nowMs, staleKeys)
  const c = new Phase(ctx.opsPool)
  const epochAtBuild = ctx.tableEpoch
  let epochSeen = epochAtBuild
  await p.build(stats)

  const removals: Removal[] = []
  try {
    if (ctx.losses !== lossesAtStart)
      throw new WireError('connection to Redis lost while preparing')
    const sent = sendPhase(
      ctx,
      p.m,
      ctx.wire,
      nowMs,
      p.side,
      (ref, code, deleted) => {
        if (ref < 0) {
          const row = p.deletes[-1 - ref] as number
          for (const rec of deleted ?? []) removals.push({ row, rec })
        } else p.results[ref] = code
      },
      (epoch) => {
        epochSeen = epoch
      },
    )
    onSent()
    await sent
    if (epochSeen !== null && epochSeen !== epochAtBuild)
      await writeTableAgain(ctx, p.tabled, epochSeen)
  } catch (err) {
    // forgotten, not restored: an earlier value may stand for a write of another call that failed too
    for (const a of p.marks) {
      a.inTable = false
      a.indexedHour = -1
    }
    for (const hour of p.newHours) ctx.hoursSeen.delete(hour)
    throw err
  }

  revokeRefused(ctx, cols, p, stats, c)
  if (removals.length > 0) await revokeDeleted(ctx, cols, removals, stats, c)
  await sendPhase(ctx, c, ctx.lane, nowMs)
  // Phase C may have reached a restarted Redis that lost phase M: the caller applies the events again.
  if (ctx.losses !== lossesAtStart)
    throw new WireError('connection to Redis lost during the writes')
}
