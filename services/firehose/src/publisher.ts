import { encodeEvents, encodeMention, type MentionEvent, type StreamEvent } from '@circles/core'
import type { ShardKeys } from '@circles/redis-schema'
import { luaSource } from '@circles/redis-wire'
import type { Redis } from 'ioredis'

export class PublishError extends Error {
  override name = 'PublishError'
}

/** Events of consecutive frames and the seq of the last of them. */
export interface Batch {
  /**
   * The events, by stream shard (index k: `schema.shard(k)`, FIREHOSE_SHARDS lists), each in frame order,
   * without those of frames a shard already held when the session started (shard-route.ts).
   */
  shards: StreamEvent[][]
  /**
   * Posts for the bot (core/mention.ts): entries of their own, field `m`, in shard 0's MULTI, so they are
   * published exactly once like the events. The indexer skips them; the `bot` group reads only them.
   */
  mentions?: MentionEvent[]
  /** Seq of the last frame in the batch; the cursor after the batch is written. */
  seq: number
  /** Frames in the batch (for metrics). */
  frames: number
  /** The relay's time of the last frame, ms (for the relay-lag gauge); 0 when unknown. */
  time: number
}

/** What one shard's MULTI writes: its events (and, for shard 0, the mentions), then its cursor `seq`. */
export interface ShardBatch {
  events: readonly StreamEvent[]
  mentions?: readonly MentionEvent[]
  seq: number
}

export interface PublisherOptions {
  eventsPerEntry: number
  /** `MAXLEN ~` on every XADD: the last-resort memory guard. */
  maxLen: number
}

/**
 * Sets the cursor (KEYS[1]) to ARGV[2] only while it holds ARGV[1] ('' for none), and says whether it did.
 * A GET inside the MULTI would tell the same, but only after the SET had already moved the cursor.
 */
const ADVANCE_CURSOR = luaSource(import.meta.url, 'advance-cursor')

/**
 * Writes one shard's part of a batch, its stream entries and its cursor, in one MULTI/EXEC, so that after a
 * crash at any instant the shard's stored cursor names exactly the last frame whose events are in its
 * stream: restarting from it yields no gap and no duplicate. Returns the number of entries written.
 *
 * `after` is the cursor this batch follows, as the session last wrote or read it (null: none stored).
 * When given, the cursor moves only if Redis still holds it: a Redis that restarted may have lost our last
 * batches although it acknowledged them (appendfsync everysec loses up to a second), and a session that
 * went on writing over the older cursor it came back with would skip their frames for good. Then this
 * throws, the session restarts from the stored cursor, and the batch's entries, already added, come again
 * (the indexer applies an event twice as once).
 */
export async function publishBatch(
  redis: Redis,
  shard: ShardKeys,
  batch: ShardBatch,
  opts: PublisherOptions,
  after?: string | null,
): Promise<number> {
  const multi = redis.multi()
  let entries = 0
  for (let i = 0; i < batch.events.length; i += opts.eventsPerEntry) {
    const value = encodeEvents(batch.events.slice(i, i + opts.eventsPerEntry))
    multi.xadd(shard.stream, 'MAXLEN', '~', opts.maxLen, '*', 'e', value)
    entries++
  }
  const mentions = batch.mentions ?? []
  for (let i = 0; i < mentions.length; i += opts.eventsPerEntry) {
    const value = mentions
      .slice(i, i + opts.eventsPerEntry)
      .map(encodeMention)
      .join('\n')
    multi.xadd(shard.stream, 'MAXLEN', '~', opts.maxLen, '*', 'm', value)
    entries++
  }
  // Last, so that a runtime error in an XADD (which MULTI does not roll back) is seen before trusting it.
  if (after === undefined) multi.set(shard.cursor, String(batch.seq))
  else multi.eval(ADVANCE_CURSOR, 1, shard.cursor, after ?? '', String(batch.seq))
  let replies: [error: Error | null, result: unknown][] | null
  try {
    replies = await multi.exec()
  } catch (err) {
    // EXECABORT (e.g. OOM at queue time) or a lost connection: Redis applied nothing.
    throw new PublishError(`MULTI for ${shard.cursor} = ${batch.seq} failed`, { cause: err })
  }
  if (replies === null)
    throw new PublishError(`MULTI for ${shard.cursor} = ${batch.seq} was discarded`)
  const failed = replies.find(([error]) => error !== null)
  if (failed) {
    // Only a command failing at run time gets here (e.g. WRONGTYPE): the start-up key check rules that
    // out unless someone rewrites our keys while we run.
    throw new PublishError(`a command in the MULTI for cursor ${batch.seq} failed`, {
      cause: failed[0],
    })
  }
  if (after !== undefined && replies.at(-1)?.[1] !== 1) {
    throw new PublishError(
      `the stored cursor no longer holds ${after ?? 'nothing'} (Redis restarted and lost writes?): not moved to ${batch.seq}`,
    )
  }
  return entries
}

/** A shard's stored cursor, or null when none (or an unusable one) is stored. */
export async function readCursor(redis: Redis, shard: ShardKeys): Promise<number | null> {
  const value = await redis.get(shard.cursor)
  if (value === null || !/^\d+$/.test(value)) return null
  const n = Number(value)
  return Number.isSafeInteger(n) ? n : null
}

/**
 * Writes a batch: one MULTI per shard (its entries and its cursor), sent together. Every shard's cursor
 * moves, also where the batch has no event for it, so that the lowest cursor, where a restart reads the
 * relay from, keeps up. A shard whose cursor is at or past the batch (`floors`) already holds it. When one
 * MULTI fails the others may have gone through: the session ends, and the next one leaves out for them
 * what they hold (shard-route.ts). `afters` (per shard, the cursor its MULTI must find) is moved for each
 * MULTI that went through. Returns the number of entries written.
 */
export async function publishShards(
  redis: Redis,
  shards: readonly ShardKeys[],
  batch: Batch,
  floors: readonly number[],
  afters: (string | null)[],
  opts: PublisherOptions,
): Promise<number> {
  const writes = shards.map((shard, k) => {
    if (batch.seq <= (floors[k] as number)) return 0
    const part = {
      events: batch.shards[k] ?? [],
      mentions: k === 0 ? batch.mentions : undefined,
      seq: batch.seq,
    }
    return publishBatch(redis, shard, part, opts, afters[k]).then((entries) => {
      afters[k] = String(batch.seq)
      return entries
    })
  })
  if (writes.length === 1) return writes[0] as number | Promise<number>
  const results = await Promise.allSettled(writes)
  const failed = results.find((r) => r.status === 'rejected')
  if (failed) throw failed.reason
  return results.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value : 0), 0)
}
