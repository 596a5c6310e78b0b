import { isValidDid } from '@circles/core'
import { BACKFILL_QUEUE, type RedisSchema } from '@circles/redis-schema'
import type { Queue } from 'bullmq'

// The `backfill` queue's contract, shared by who enqueues (the API, the admin routes, the CLI) and who works
// (the scheduler's backfill worker). One job per account: its own repo, then its top partners' repos.

export { BACKFILL_QUEUE }

/** Why a backfill was asked for; decides its priority (BullMQ: lower runs first). */
export type BackfillReason = 'cli' | 'request' | 'tracked'

export const BACKFILL_PRIORITY: Record<BackfillReason, number> = { cli: 1, request: 2, tracked: 5 }

export interface BackfillJobData {
  did: string
  reason: BackfillReason
}

/** One job per account at a time: BullMQ ignores an `add` whose id is queued or running. */
export function backfillJobId(did: string): string {
  // BullMQ refuses a custom id with ':' in it; a DID has two or more, and '_' never appears in one.
  return `account_${did.replaceAll(':', '_')}`
}

/** The queue options every side uses: the schema's hash-tagged prefix keeps all of a queue's keys in one slot. */
export function backfillQueueOptions(schema: RedisSchema) {
  return { prefix: schema.bullPrefix }
}

/** Enqueues an account's backfill (a no-op while one for it is queued or running). */
export async function enqueueBackfill(
  queue: Queue<BackfillJobData>,
  did: string,
  reason: BackfillReason,
): Promise<void> {
  if (!isValidDid(did)) throw new Error('refusing to enqueue a backfill of an invalid DID')
  await queue.add(
    'account',
    { did, reason },
    {
      jobId: backfillJobId(did),
      priority: BACKFILL_PRIORITY[reason],
      removeOnComplete: true,
      removeOnFail: { age: 24 * 3600, count: 1000 },
      attempts: 3,
      backoff: { type: 'exponential', delay: 30_000 },
    },
  )
}
