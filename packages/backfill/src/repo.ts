import { pipelineFor } from '@circles/redis-wire'
import { RepoSourceError } from '@circles/repo-source'
import type { ChainableCommander } from 'ioredis'
import { BackfillRefused, type FoldDeps, type FoldResult, foldRepo } from './fold.js'
import type { RepoOpener } from './source.js'

// One repo's backfill, with its state (`schema.backfillRepo`: state done|failed, rev, at, records, bytes,
// reason) and the counters (`schema.backfillStats`). A repo already folded is not fetched again; a re-sync
// asks only for what changed since its rev (`getRepo?since=`).

export interface RepoDeps extends FoldDeps {
  open: RepoOpener
}

export interface RepoOutcome {
  did: string
  /** `skipped`: folded before (and no re-sync asked). */
  status: 'folded' | 'skipped'
  fold?: FoldResult
  bytes?: number
}

/** A failure's stable reason: a repo source's code, `hidden`, or `internal` for anything else. */
export function failureReason(err: unknown): string {
  if (err instanceof RepoSourceError || err instanceof BackfillRefused) return err.reason
  return 'internal'
}

/** Reasons a retry cannot change (the worker does not retry them). */
export const PERMANENT_REASONS: ReadonlySet<string> = new Set([
  'bad_did',
  'did_not_found',
  'bad_document',
  'no_pds',
  'bad_scheme',
  'bad_url',
  'private_address',
  'too_large',
  'hidden',
  'bad_car',
  'bad_block',
  'missing_block',
  'bad_commit',
  'wrong_did',
  'bad_signature',
  'bad_mst',
])

/** Runs a pipeline; the first error is thrown (as a MULTI's EXEC would fail). */
async function execAll(pipe: ChainableCommander): Promise<void> {
  for (const [err] of (await pipe.exec()) ?? []) if (err) throw err
}

export async function backfillRepo(
  deps: RepoDeps,
  did: string,
  opts: { resync?: boolean } = {},
): Promise<RepoOutcome> {
  const { redis, schema } = deps
  const key = schema.backfillRepo(did)
  const state = await redis.hgetall(key)
  if (state.state === 'done' && !opts.resync) return { did, status: 'skipped' }
  const since = opts.resync && state.state === 'done' ? state.rev : undefined
  try {
    const repo = await deps.open(did, { since })
    const fold = await foldRepo(deps, did, repo.records, { partial: since !== undefined })
    const folded = fold.liveEvents + fold.dayEvents
    // The state (the account's slot) and the totals (their own) in one pipeline, not a MULTI: on a Redis
    // Cluster the two slots may be on two nodes. The totals are an operator's counters: a crash between
    // the two can miss one repo's count, never its state.
    await execAll(
      pipelineFor(redis)
        .hset(key, {
          state: 'done',
          rev: repo.rev,
          at: (deps.now ?? Date.now)(),
          records: fold.records,
          bytes: repo.bytes,
        })
        .hdel(key, 'reason')
        .hincrby(schema.backfillStats, 'repos', 1)
        .hincrby(schema.backfillStats, 'bytes', repo.bytes)
        .hincrby(schema.backfillStats, 'records', fold.records)
        .hincrby(schema.backfillStats, 'folded', folded),
    )
    return { did, status: 'folded', fold, bytes: repo.bytes }
  } catch (err) {
    const reason = failureReason(err)
    // A hidden account keeps no state naming it; anything else says why it failed.
    const pipe = pipelineFor(redis).hincrby(schema.backfillStats, `failed:${reason}`, 1)
    if (reason !== 'hidden' && state.state !== 'done') {
      pipe.hset(key, { state: 'failed', reason, at: (deps.now ?? Date.now)() })
    }
    await execAll(pipe)
    throw err
  }
}
