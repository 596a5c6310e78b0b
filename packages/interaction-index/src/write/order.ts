import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import { EDGE_SECONDS } from '../layout.js'

/** How long the roll-up cursor read by the writer is trusted before it is read again (one GET). */
const CURSOR_MAX_AGE_MS = 60_000

/** The roll-up's cursor (last hour folded, null before the first roll-up), as last read, and when. */
export class RollupCursor {
  private hour: number | null = null
  private at = Number.NEGATIVE_INFINITY
  private reading: Promise<void> | null = null

  constructor(
    private readonly redis: Redis,
    private readonly schema: RedisSchema,
    /** Seconds a record is kept after its hour ends (`keepSeconds` of the grace). */
    private readonly keep: number,
  ) {}

  /** Reads the cursor again if the last read is older than a minute; null when it is fresh. */
  read(nowMs: number): Promise<void> | null {
    if (nowMs - this.at < CURSOR_MAX_AGE_MS && nowMs >= this.at) return null
    this.reading ??= this.redis
      .get(this.schema.rollupCursor)
      .then((v) => {
        const n = v === null ? Number.NaN : Number(v)
        this.hour = Number.isSafeInteger(n) ? n : null
        this.at = nowMs
      })
      .finally(() => {
        this.reading = null
      })
    return this.reading
  }

  /**
   * Records older than this (seconds) are compacted away: those of hours the roll-up has folded once they
   * left the window (+1 h), the others only when the grace is over too. Before the first roll-up (no
   * cursor) everything is kept for the grace.
   */
  horizon(nowMs: number): number {
    const nowSec = Math.floor(nowMs / 1000)
    const oldest = nowSec - this.keep
    if (this.hour === null) return oldest
    return Math.max(oldest, Math.min(nowSec - EDGE_SECONDS, (this.hour + 1) * 3600))
  }
}

/**
 * The order of a writer's calls, which may overlap (the next one started before the previous one
 * resolved): each sends its writes (phase M) only after the previous call sent its own, so consecutive
 * calls reach Redis in call order, and every account sees its appends in stream order, which is what
 * decides where records land. A call with a purge runs alone: after every earlier call, and the next call
 * starts only when it is done.
 */
export class CallOrder {
  // The end of the latest call of apply(); and, while a call with a purge is waiting or running, the end of
  // that call, which every later call waits for.
  private turnAll: Promise<void> = Promise.resolve()
  // Resolves when the latest call has sent its phase M (a call with a purge: when it is done).
  private sentTurn: Promise<void> = Promise.resolve()

  constructor(
    private readonly cursor: RollupCursor,
    private readonly now: () => number,
  ) {}

  /**
   * Runs `fn` in this writer's order of calls: it starts its writes (phase M) after the previous call sent
   * its own, and `onSent` lets the next one start; `alone`, it also waits for every earlier call to end,
   * and the next call waits for it to end (what a purge needs: no writes of others in between).
   */
  async inTurn<T>(alone: boolean, fn: (onSent: () => void) => Promise<T>): Promise<T> {
    const prevAll = this.turnAll
    let doneAll = () => {}
    this.turnAll = new Promise<void>((resolve) => {
      doneAll = resolve
    })
    const prevSent = this.sentTurn
    let markSent = () => {}
    this.sentTurn = new Promise<void>((resolve) => {
      markSent = resolve
    })
    try {
      await prevSent
      if (alone) await prevAll
      // the roll-up's cursor sets the compaction horizon: read at most once a minute
      const read = this.cursor.read(this.now())
      if (read) await read
      return await fn(alone ? () => {} : markSent)
    } finally {
      markSent()
      doneAll()
    }
  }
}
