import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'

/** Accounts asked about per pipeline. */
const CHUNK = 1000

/**
 * Which of `dids` nothing the scheduler publishes may name: opted out (`optOuts`), purged (a purge mark,
 * while it lives) or queued to be forgotten (`forgetQueue`). The API asks the first two again when it
 * serves (services/fart/src/stats-privacy.ts); the queue matters here because the stats read the live
 * index, where an account opted out moments ago may still be until the indexer has purged it.
 */
export async function hiddenAccounts(
  redis: Redis,
  schema: RedisSchema,
  dids: readonly string[],
): Promise<Set<string>> {
  const out = new Set<string>()
  for (let i = 0; i < dids.length; i += CHUNK) {
    const chunk = dids.slice(i, i + CHUNK)
    const pipe = redis
      .pipeline()
      .smismember(schema.optOuts, ...chunk)
      .zmscore(schema.forgetQueue, ...chunk)
    // One EXISTS per account: the marks live in their accounts' slots.
    for (const d of chunk) pipe.exists(schema.accountPurged(d))
    const replies = ((await pipe.exec()) ?? []).map(([err, v]) => {
      if (err) throw err
      return v
    })
    const [optedOut, queued, ...marked] = replies as [number[], (string | null)[], ...number[]]
    chunk.forEach((d, j) => {
      if (optedOut[j] === 1 || queued[j] !== null || marked[j] === 1) out.add(d)
    })
  }
  return out
}
