import { encodeEvents, type StreamEvent } from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'

export class PublishError extends Error {
  override name = 'PublishError'
}

/** Events of consecutive frames and the seq of the last of them. */
export interface Batch {
  events: StreamEvent[]
  /** Seq of the last frame in the batch; the cursor after the batch is written. */
  seq: number
  /** Frames in the batch (for metrics). */
  frames: number
  /** The relay's time of the last frame, ms (for the relay-lag gauge); 0 when unknown. */
  time: number
}

export interface PublisherOptions {
  eventsPerEntry: number
  /** `MAXLEN ~` on every XADD: the last-resort memory guard. */
  maxLen: number
}

/**
 * Writes a batch's stream entries and the cursor in one MULTI/EXEC, so that after a crash at any instant
 * the stored cursor names exactly the last frame whose events are in the stream: restarting from it
 * yields no gap and no duplicate. Returns the number of entries written.
 */
export async function publishBatch(
  redis: Redis,
  schema: RedisSchema,
  batch: Batch,
  opts: PublisherOptions,
): Promise<number> {
  const multi = redis.multi()
  let entries = 0
  for (let i = 0; i < batch.events.length; i += opts.eventsPerEntry) {
    const value = encodeEvents(batch.events.slice(i, i + opts.eventsPerEntry))
    multi.xadd(schema.eventStream, 'MAXLEN', '~', opts.maxLen, '*', 'e', value)
    entries++
  }
  // Last, so that a runtime error in an XADD (which MULTI does not roll back) is seen before trusting it.
  multi.set(schema.firehoseCursor, String(batch.seq))
  let replies: [error: Error | null, result: unknown][] | null
  try {
    replies = await multi.exec()
  } catch (err) {
    // EXECABORT (e.g. OOM at queue time) or a lost connection: Redis applied nothing.
    throw new PublishError(`MULTI for cursor ${batch.seq} failed`, { cause: err })
  }
  if (replies === null) throw new PublishError(`MULTI for cursor ${batch.seq} was discarded`)
  const failed = replies.find(([error]) => error !== null)
  if (failed) {
    // Only a command failing at run time gets here (e.g. WRONGTYPE): the start-up key check rules that
    // out unless someone rewrites our keys while we run.
    throw new PublishError(`a command in the MULTI for cursor ${batch.seq} failed`, {
      cause: failed[0],
    })
  }
  return entries
}

/** The stored cursor, or null when none (or an unusable one) is stored. */
export async function readCursor(redis: Redis, schema: RedisSchema): Promise<number | null> {
  const value = await redis.get(schema.firehoseCursor)
  if (value === null || !/^\d+$/.test(value)) return null
  const n = Number(value)
  return Number.isSafeInteger(n) ? n : null
}
