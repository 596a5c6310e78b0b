import type { RedisSchema } from '@circles/redis-schema'
import { pipelineFor } from '@circles/redis-wire'
import type { Redis } from 'ioredis'

/** Accounts asked about per pipeline. */
const CHUNK = 1000

// Here rather than in the scheduler: the scheduler's stats and snapshots and the API's /v1/stats all ask it,
// and the API does not depend on the scheduler.

/**
 * Which of `dids` nothing the scheduler publishes may name: opted out (`optOuts`), purged (a purge mark,
 * while it lives) or queued to be forgotten (`forgetQueue`). The queue matters here because the stats read
 * the live index, where an account opted out moments ago may still be until the indexer has purged it. The
 * API asks again when it serves (services/fart/src/stats-privacy.ts), without the queue (`queued: false`):
 * an account that came back before the forget step ran is served again at once.
 */
export async function hiddenAccounts(
  redis: Redis,
  schema: RedisSchema,
  dids: readonly string[],
  { queued = true }: { queued?: boolean } = {},
): Promise<Set<string>> {
  const out = new Set<string>()
  for (let i = 0; i < dids.length; i += CHUNK) {
    const chunk = dids.slice(i, i + CHUNK)
    const pipe = pipelineFor(redis)
    hiddenChecks(pipe, schema, chunk, { queued })
    const res = await pipe.exec()
    if (res === null) throw new Error('Connection is closed.')
    const replies = res.map(([err, v]) => {
      if (err) throw err
      return v
    })
    for (const d of hiddenFromReplies(chunk, replies, { queued })) out.add(d)
  }
  return out
}

/** Where commands are written: an ioredis pipeline, or a redis-wire Frame. */
export interface CommandSink {
  call(...args: string[]): unknown
}

/**
 * Writes the commands `hiddenAccounts` sends about `dids` into `sink` (for a caller that sends them itself:
 * the API's history asks about hundreds of partners at once in one frame); `hiddenFromReplies` reads the
 * replies. Returns how many commands it wrote.
 */
export function hiddenChecks(
  sink: CommandSink,
  schema: RedisSchema,
  dids: readonly string[],
  { queued = true }: { queued?: boolean } = {},
): number {
  sink.call('SMISMEMBER', schema.optOuts, ...dids)
  if (queued) sink.call('ZMSCORE', schema.forgetQueue, ...dids)
  // One EXISTS per account: the marks live in their accounts' slots.
  for (const d of dids) sink.call('EXISTS', schema.accountPurged(d))
  return (queued ? 2 : 1) + dids.length
}

/** The hidden ones of `dids` from the replies to `hiddenChecks(sink, schema, dids, opts)`, in order. */
export function hiddenFromReplies(
  dids: readonly string[],
  replies: readonly unknown[],
  { queued = true }: { queued?: boolean } = {},
): Set<string> {
  const out = new Set<string>()
  const optedOut = replies[0] as number[]
  const inQueue = queued ? (replies[1] as unknown[]) : []
  const marked = replies.slice(queued ? 2 : 1) as number[]
  dids.forEach((d, j) => {
    if (optedOut[j] === 1 || (queued && inQueue[j] !== null) || marked[j] === 1) out.add(d)
  })
  return out
}
