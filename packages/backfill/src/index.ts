// Repo backfill: an account's history from its own repo (and its top partners'), folded into the live
// index and the long-term aggregates exactly once against the live stream. See README, "Backfill".
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
  type BackfillState,
  type BackfillStateName,
  markQueued,
  parseBackfillState,
  readBackfillState,
} from './state.js'
