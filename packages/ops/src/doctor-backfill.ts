import { BACKFILL_QUEUE, backfillQueueOptions } from '@circles/backfill'
import type { RedisSchema } from '@circles/redis-schema'
import { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import type { Check } from './doctor.js'

// The doctor's backfill line: what the worker has done (`schema.backfillStats`, counters since the Redis
// began) and what waits in its queue. Failed repos are a warning, not a failure: a repo a PDS refuses is
// the PDS's doing, and the circle still shows what the live stream knows.

function mb(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MB`
}

export async function checkBackfill(redis: Redis, schema: RedisSchema): Promise<Check> {
  const stats = await redis.hgetall(schema.backfillStats)
  const queue = new Queue(BACKFILL_QUEUE, { connection: redis, ...backfillQueueOptions(schema) })
  let counts: Record<string, number>
  try {
    counts = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed')
  } finally {
    await queue.close()
  }
  const failures = Object.entries(stats)
    .filter(([k]) => k.startsWith('failed:'))
    .map(([k, v]) => `${k.slice(7)} ${v}`)
  const waiting = (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0)
  const done = `${Number(stats.repos ?? 0)} repos fetched (${mb(Number(stats.bytes ?? 0))}), ${Number(stats.folded ?? 0)} interactions folded`
  const queued = `queue: ${waiting} waiting, ${counts.active ?? 0} running, ${counts.failed ?? 0} failed jobs`
  return failures.length === 0
    ? { name: 'backfill', status: 'ok', message: `${done}; ${queued}` }
    : {
        name: 'backfill',
        status: 'warn',
        message: `${done}; repos refused or failed: ${failures.join(', ')}; ${queued}. An account's reason: field reason of its key among ${schema.backfillPattern}.`,
      }
}
