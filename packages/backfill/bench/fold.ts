import { interpretOp, isValidTid, tidTimestampMs } from '@circles/core'
import type { RepoRecord } from '@circles/repo-source'

export interface FoldCounts {
  /** Records seen. */
  records: number
  /** Interaction events made of them (likes, reposts, replies, quotes of others). */
  events: number
  /** Records `interpretOp` refused as malformed. */
  rejected: number
  /** Events per partner DID. */
  perPartner: Map<string, number>
}

/**
 * The bench's stand-in for the real fold (the lead's, into Redis): each record through `interpretOp` as
 * a create at its own time (its `createdAt`, else its rkey's TID time), the events counted per partner.
 */
export function foldRecords(did: string, records: Iterable<RepoRecord>): FoldCounts {
  const counts: FoldCounts = { records: 0, events: 0, rejected: 0, perPartner: new Map() }
  for (const { collection, rkey, record } of records) {
    counts.records++
    const result = interpretOp({
      repo: did,
      action: 'create',
      collection,
      rkey,
      record,
      commitTime: recordTime(rkey, record.createdAt),
    })
    if (result.rejected !== undefined) counts.rejected++
    for (const event of result.events) {
      if (event.type !== 'create') continue
      counts.events++
      counts.perPartner.set(event.subject, (counts.perPartner.get(event.subject) ?? 0) + 1)
    }
  }
  return counts
}

function recordTime(rkey: string, createdAt: unknown): number {
  const t = typeof createdAt === 'string' ? Date.parse(createdAt) : Number.NaN
  if (Number.isFinite(t)) return t
  return isValidTid(rkey) ? tidTimestampMs(rkey) : 0
}
