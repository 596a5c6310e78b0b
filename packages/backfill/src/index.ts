// Repo backfill: an account's history from its own repo (and its top partners'), folded into the live
// index and the long-term aggregates exactly once against the live stream. See README, "Backfill".

export { type AccountOptions, type AccountOutcome, backfillAccount } from './account.js'
export { classifyRecords, LIVE_HOURS_BACK, type RepoRecord } from './classify.js'
export { BACKFILL_ENV, type BackfillConfig, type BackfillEnv, backfillConfig } from './config.js'
export { BackfillRefused, type FoldDeps, type FoldResult, foldRepo } from './fold.js'
export {
  BACKFILL_PRIORITY,
  BACKFILL_QUEUE,
  type BackfillJobData,
  type BackfillReason,
  backfillJobId,
  backfillQueueOptions,
  enqueueBackfill,
} from './queue.js'
export {
  backfillRepo,
  failureReason,
  PERMANENT_REASONS,
  type RepoDeps,
  type RepoOutcome,
} from './repo.js'
export { type OpenedRepo, type RepoOpener, repoOpener, type SourceConfig } from './source.js'
export {
  type BackfillState,
  type BackfillStateName,
  markQueued,
  parseBackfillState,
  readBackfillState,
} from './state.js'
