import {
  DAY_MS,
  DEFAULT_TID_TOLERANCE_MS,
  HOUR_MS,
  type InteractionCreate,
  type RejectReason,
} from '@circles/core'
import { WINDOW_HOURS } from '@circles/interaction-index'
import { kindIndex } from '@circles/long-term'
import type { InteractionRecord } from '@circles/repo-source'
import { DayCounts } from './day-counts.js'
import { CreateInterpreter, type Emit, recordFields, tidMsOf } from './interpret.js'

// Which of a repo's records go where (pure: no I/O, the clock and the live-since mark are arguments).
//
// A repo holds what its account created and did not delete; the live stream delivered what was created
// since `liveSince` (the indexer's mark). Each create (interpreted as the live path's own `interpretOp`
// does, interpret.ts, so the two agree on kinds, subjects, self-interactions and malformed records) goes
// to exactly one place:
// - hours the live index will still hold for a while (from 46 h back: the roll-up folds an hour only once it
//   is 48 h old, so two hours of margin keep a record from landing in an hour being folded): the live
//   index, through the indexer's own writer, whose duplicate search (author + rkey) and tombstones make a
//   record the stream also delivered, or saw deleted, count once or not at all;
// - older hours, when before `liveSince`: the backfilled day blobs (`bs`/`br`), which nothing else writes;
// - older hours from `liveSince` on: nowhere, the stream delivered them and the roll-up folded them.
// Records older than the retention are left out, as the roll-up's aggregates would have let them go.

/** Hours back from the current one from which a record goes to the live index. */
export const LIVE_HOURS_BACK = WINDOW_HOURS - 2

export interface RepoRecord {
  collection: string
  rkey: string
  record: unknown
}

export { DayCounts }

export interface ClassifyOptions {
  did: string
  now: number
  /** ms of the live-since mark; null when nothing was ever delivered live (all history is the repo's). */
  liveSince: number | null
  retentionDays: number
}

export interface Classified {
  live: InteractionCreate[]
  days: DayCounts
  /** Creates counted into `days`. */
  dayEvents: number
  /** Records read, and what was left out and why. */
  records: number
  rejected: Partial<Record<RejectReason, number>>
  self: number
  /** No usable time (no TID rkey, no parseable createdAt). */
  untimed: number
  /** Older than the retention, or in the future (beyond the TID tolerance). */
  outOfRange: number
  /** Older hours the live stream covered (from `liveSince` on). */
  liveCovered: number
}

/**
 * A record's commit time stand-in: the repo keeps no commit time per record, so its `createdAt`, or its
 * TID (`tidMs`, NaN when the rkey is not one) when that is missing. The interpretation then takes the TID
 * when it is within the tolerance of it, as the live path does with the relay's commit time.
 */
function commitTimeOf(tidMs: number, createdAtMs: number): number | null {
  if (Number.isFinite(createdAtMs) && createdAtMs > 0) return createdAtMs
  return Number.isNaN(tidMs) ? null : tidMs
}

export function emptyClassified(days = new DayCounts(0, 0)): Classified {
  return {
    live: [],
    days,
    dayEvents: 0,
    records: 0,
    rejected: {},
    self: 0,
    untimed: 0,
    outOfRange: 0,
    liveCovered: 0,
  }
}

/**
 * Sorts a repo's records into the live index's share and the day blobs' (see above): decoded records,
 * or (what `RepoContents.interactions()` hands out) the few fields of them that count.
 */
export function classifyRecords(
  records: Iterable<RepoRecord | InteractionRecord>,
  o: ClassifyOptions,
): Classified {
  const liveFromMs = (Math.floor(o.now / HOUR_MS) - LIVE_HOURS_BACK) * HOUR_MS
  const oldest = o.now - o.retentionDays * DAY_MS
  const days = new DayCounts(Math.floor(oldest / DAY_MS), Math.floor(liveFromMs / DAY_MS))
  const out = emptyClassified(days)
  const newest = o.now + DEFAULT_TID_TOLERANCE_MS
  const liveSince = o.liveSince ?? Number.POSITIVE_INFINITY
  const interpreter = new CreateInterpreter(o.did)
  let rkey = ''
  const emit: Emit = (kind, subject, time, chars) => {
    if (time < oldest || time > newest) out.outOfRange++
    else if (time >= liveFromMs)
      out.live.push({ type: 'create', kind, author: o.did, subject, rkey, time, chars })
    else if (time >= liveSince) out.liveCovered++
    else {
      days.add(subject, Math.floor(time / DAY_MS), kindIndex(kind))
      out.dayEvents++
    }
  }
  for (const r of records) {
    out.records++
    rkey = r.rkey
    const fields = 'fields' in r ? r : recordFields(r.record)
    const tidMs = tidMsOf(rkey)
    const commitTime = commitTimeOf(tidMs, fields === null ? Number.NaN : fields.createdAtMs)
    if (commitTime === null) {
      out.untimed++
      continue
    }
    const rejected = interpreter.interpret(r.collection, rkey, tidMs, fields, commitTime, emit)
    if (rejected !== undefined) out.rejected[rejected] = (out.rejected[rejected] ?? 0) + 1
    out.self += interpreter.self
  }
  return out
}
