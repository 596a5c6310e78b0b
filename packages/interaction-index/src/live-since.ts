import type { RedisSchema } from '@circles/redis-schema'
import { luaSource } from '@circles/redis-wire'
import type { Redis } from 'ioredis'

// Where the live stream's coverage begins (`schema.liveSince`): the earliest event time the indexer applied
// from the stream. A repo backfill takes from a repo only what the stream cannot have delivered (events
// before the mark), so the two never count one record twice in the long-term aggregates (packages/backfill).

const LIVE_SINCE_LUA = luaSource(import.meta.url, 'live-since')

/** Keeps the mark at the earliest event time seen, one script call only when a batch goes below it. */
export class LiveSinceMark {
  private known: number | null = null

  constructor(
    private readonly redis: Redis,
    private readonly schema: RedisSchema,
  ) {}

  /** After a batch was applied: its earliest event time (ms), NaN or Infinity when it had no event. */
  async note(earliestMs: number): Promise<void> {
    if (!Number.isFinite(earliestMs) || earliestMs <= 0) return
    if (this.known !== null && this.known <= earliestMs) return
    const mark = await this.redis.eval(
      LIVE_SINCE_LUA,
      1,
      this.schema.liveSince,
      Math.floor(earliestMs),
    )
    this.known = Number(mark)
  }

  /** Redis may have lost the mark (an empty restart): set it again at the next batch. */
  forget(): void {
    this.known = null
  }
}

/** The mark, or null before the indexer applied anything (then no event was delivered live). */
export async function readLiveSince(redis: Redis, schema: RedisSchema): Promise<number | null> {
  const v = await redis.get(schema.liveSince)
  const n = v === null ? Number.NaN : Number(v)
  return Number.isSafeInteger(n) ? n : null
}
