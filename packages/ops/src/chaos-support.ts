import { createIndexReader } from '@circles/interaction-index'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'

// What the tests that crash, kill or reload the running pipeline share (the indexer's Redis-restart and
// Redis-fault tests, the PM2 test here): one way to read every answer of an index, and one set of settings
// that keeps both services busy.

/**
 * Small batches and a short leash: many MULTIs and XACKs, so a kill lands between and inside them, and the
 * firehose stays at most a few entries ahead of the indexer, so both are busy at any moment of the run.
 */
export const BUSY_PIPELINE_ENV = {
  FIREHOSE_BATCH_FRAMES: '25',
  FIREHOSE_BACKOFF_MIN_MS: '50',
  FIREHOSE_BACKOFF_MAX_MS: '300',
  FIREHOSE_LAG_CHECK_MS: '100',
  FIREHOSE_MAX_LAG: '20',
  FIREHOSE_RESUME_LAG: '5',
  INDEXER_BATCH_ENTRIES: '3',
  INDEXER_RETRY_MS: '100',
  INDEXER_CLAIM_IDLE_MS: '1000',
  INDEXER_CLAIM_INTERVAL_MS: '250',
} as const

/**
 * Every answer the index gives about `accounts`: each one's partners with their counts both ways, and each
 * hour's roll-up rows (what the scheduler folds). Two runs over the same input must give the same.
 */
export async function everyAnswer(redis: Redis, schema: RedisSchema, accounts: readonly string[]) {
  const reader = createIndexReader(redis, schema)
  const weights = { like: 1, repost: 1, reply: 1, quote: 1 }
  const partners: Record<string, unknown> = {}
  for (const did of accounts) {
    partners[did] = await reader.topPartners({
      did,
      direction: 'both',
      windowHours: 48,
      weights,
      limit: 10_000,
    })
  }
  const hours: Record<number, unknown[]> = {}
  for (const hour of await reader.hours()) {
    const rows: unknown[] = []
    await reader.scanHour(hour, async (batch) => {
      rows.push(...batch)
    })
    hours[hour] = rows.map((r) => JSON.stringify(r)).sort()
  }
  return { partners, hours }
}

export type Answers = Awaited<ReturnType<typeof everyAnswer>>
