import { DEFAULT_WEIGHTS } from '@circles/interaction-index'
import { createLongWindowReader } from '@circles/long-term'
import { backfillRepo, failureReason, type RepoDeps, type RepoOutcome } from './repo.js'

// An account's circle backfill (one `backfill` job): its own repo (its sent side), then the repos of its
// top partners (their sent side, which holds its received side), bounded. What stays approximate is in the
// README ("Backfill"): received interactions from accounts outside the top partners come only from the
// live stream.

export interface AccountOptions {
  /** Top partners whose repos are backfilled too (BACKFILL_PARTNERS). @default 50 */
  partners?: number
  /** Partner repos fetched at once (each PDS is limited apart, see repo-source). @default 4 */
  concurrency?: number
  /** Ask the account's own PDS for what changed since its last backfill (`getRepo?since=`). */
  resync?: boolean
  /** After each repo: done of total. */
  onProgress?: (done: number, total: number, last: RepoOutcome | Error) => void | Promise<void>
}

export interface AccountOutcome {
  own: RepoOutcome
  partners: { folded: number; skipped: number; failed: number }
}

/** Backfills an account and its top partners; throws (state `failed`) only when its own repo fails. */
export async function backfillAccount(
  deps: RepoDeps,
  did: string,
  opts: AccountOptions = {},
): Promise<AccountOutcome> {
  const { redis, schema } = deps
  const key = schema.backfillAccount(did)
  const now = deps.now ?? Date.now
  await redis.hset(key, { state: 'running', done: 0, total: 1, at: now() })
  let own: RepoOutcome
  try {
    own = await backfillRepo(deps, did, { resync: opts.resync })
  } catch (err) {
    const reason = failureReason(err)
    if (reason === 'hidden') await redis.del(key)
    else await redis.hset(key, { state: 'failed', reason, at: now() })
    throw err
  }
  await opts.onProgress?.(1, 1, own)
  const partners = await topPartners(deps, did, opts.partners ?? 50)
  const total = 1 + partners.length
  let done = 1
  await redis.hset(key, { done, total })
  const tally = { folded: 0, skipped: 0, failed: 0 }
  let next = 0
  const worker = async () => {
    while (next < partners.length) {
      const p = partners[next++] as string
      let last: RepoOutcome | Error
      try {
        last = await backfillRepo(deps, p)
        tally[last.status]++
      } catch (err) {
        // A partner's repo that fails costs that partner's share of the received side, not the job.
        last = err as Error
        tally.failed++
      }
      done++
      await redis.hset(key, 'done', done)
      await opts.onProgress?.(done, total, last)
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker))
  await redis.hset(key, { state: 'done', done, total, at: now() })
  return { own, partners: tally }
}

async function topPartners(deps: RepoDeps, did: string, limit: number): Promise<string[]> {
  if (limit <= 0) return []
  const reader = createLongWindowReader(deps.redis, deps.schema, { now: deps.now })
  const top = await reader.topPartnersLong({
    did,
    direction: 'both',
    days: deps.retentionDays ?? 90,
    weights: DEFAULT_WEIGHTS,
    limit,
  })
  return top.map((p) => p.did)
}
