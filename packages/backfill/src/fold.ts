import type { InteractionCreate } from '@circles/core'
import {
  type ApplyStats,
  emptyStats,
  type IndexWriter,
  readLiveSince,
} from '@circles/interaction-index'
import type { RedisSchema } from '@circles/redis-schema'
import { type FrameSender, wireFor } from '@circles/redis-wire'
import type { InteractionRecord } from '@circles/repo-source'
import type { Redis } from 'ioredis'
import { type Classified, classifyRecords, type RepoRecord } from './classify.js'
import { type DayWriteResult, previousPartners, writeDayBlobs } from './day-writes.js'
import { hiddenOn } from './wire-calls.js'

// One repo folded into the index: its records sorted (classify.ts), the recent ones written through the
// indexer's own writer, the older ones into the backfilled day blobs (day-writes.ts). Nobody hidden is
// written: not the account (refused whole), not a partner (left out). An account hidden while the fold
// ran (opted out, deleted) is queued to be forgotten again once the writes are done: the forget step that
// its purge queued may have run before them.

/** Live creates per writer call. */
const LIVE_CHUNK = 5000

export interface FoldDeps {
  redis: Redis
  schema: RedisSchema
  /** The index writer (the scheduler's own, or the CLI's): the live share goes through it. */
  writer: IndexWriter
  now?: () => number
  /** Days the long-term aggregates keep (ROLLUP_RETENTION_DAYS). @default 90 */
  retentionDays?: number
}

export interface FoldOptions {
  /**
   * A re-sync's diff (`getRepo?since=`): only records created since the last fold, which the live index
   * takes (its duplicate search makes that exact); the day blobs are replaced from whole repos only.
   */
  partial?: boolean
}

export interface FoldResult extends Omit<Classified, 'live' | 'days'> {
  /** Creates sent to the live index, and what the writer did with them. */
  liveEvents: number
  live: ApplyStats
  day: DayWriteResult
  /** Creates left out of the day blobs for a hidden partner. */
  hiddenPartners: number
}

export class BackfillRefused extends Error {
  override name = 'BackfillRefused'
  constructor(
    readonly reason: 'hidden',
    message: string,
  ) {
    super(message)
  }
}

async function applyLive(writer: IndexWriter, events: InteractionCreate[]): Promise<ApplyStats> {
  const total = emptyStats()
  for (let i = 0; i < events.length; i += LIVE_CHUNK) {
    const s = await writer.apply(events.slice(i, i + LIVE_CHUNK))
    for (const k of Object.keys(s) as (keyof ApplyStats)[]) {
      ;(total[k] as number) += s[k] as number
    }
  }
  return total
}

/** Folds one repo's records (already verified) into the index. */
export async function foldRepo(
  deps: FoldDeps,
  did: string,
  records: Iterable<RepoRecord | InteractionRecord>,
  opts: FoldOptions = {},
): Promise<FoldResult> {
  const { redis, schema } = deps
  const retentionDays = deps.retentionDays ?? 90
  // The day share's bulk commands go on a connection of the fold's own (wire-calls.ts; on a cluster, one per
  // primary, each command to its key's node); the first check
  // opens it before the records are sorted.
  const wire = wireFor(redis)
  try {
    const [hiddenSelf, liveSince] = await Promise.all([
      hiddenOn(wire, schema, [did]),
      readLiveSince(redis, schema),
    ])
    if (hiddenSelf.size > 0) {
      throw new BackfillRefused('hidden', `${did} opted out or was deleted: nothing is backfilled`)
    }
    const c = classifyRecords(records, {
      did,
      now: (deps.now ?? Date.now)(),
      liveSince,
      retentionDays,
    })
    if (opts.partial) c.days.clear()
    // The two shares touch different keys (the live index, the day blobs): written at once, each one's
    // round trips overlap the other's work.
    const [live, [day, hiddenPartners]] = await Promise.all([
      applyLive(deps.writer, c.live),
      writeDays(deps, wire, did, c.days, retentionDays, opts.partial === true),
    ])
    await requeueHidden(deps, wire, [did, ...c.days.keys()])
    const { live: liveList, days: _days, ...counts } = c
    return {
      ...counts,
      liveEvents: liveList.length,
      live,
      day,
      hiddenPartners,
    }
  } finally {
    await wire.close()
  }
}

/** The day blobs of the partners not hidden; and the creates left out for the hidden ones. */
async function writeDays(
  deps: FoldDeps,
  wire: FrameSender,
  did: string,
  days: Classified['days'],
  retentionDays: number,
  partial: boolean,
): Promise<[DayWriteResult, number]> {
  if (partial) return [{ days: 0, partners: 0, stripped: 0 }, 0]
  // The writer refuses creates naming a purged account itself (purge marks); the day blobs are ours to keep.
  // The partners a previous run named, read in the same round trip (stripped below if gone).
  const [hidden, previous] = await Promise.all([
    hiddenOn(wire, deps.schema, days.keys()),
    previousPartners(wire, deps.schema, did),
  ])
  let hiddenPartners = 0
  for (const h of hidden) hiddenPartners += days.delete(h)
  const day = await writeDayBlobs(deps.redis, wire, deps.schema, did, days, {
    retentionDays,
    previous,
  })
  return [day, hiddenPartners]
}

/** Accounts hidden by now are queued to be forgotten (again): what was just written goes with the rest. */
async function requeueHidden(deps: FoldDeps, wire: FrameSender, dids: string[]): Promise<void> {
  const hidden = await hiddenOn(wire, deps.schema, dids, { queued: false })
  if (hidden.size === 0) return
  const now = (deps.now ?? Date.now)()
  await deps.redis.zadd(deps.schema.forgetQueue, ...[...hidden].flatMap((d) => [now, d]))
}
