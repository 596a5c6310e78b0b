import {
  columnsOf,
  type EventColumns,
  type IdentityEvent,
  isPurgeStatus,
  type StreamEvent,
} from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import { clearPurgeMarks } from '../opt-outs.js'
import { applyEvents } from './apply.js'
import { WriterContext } from './context.js'
import { purge } from './purge.js'
import { type ApplyStats, emptyStats } from './stats.js'

// The write path of the index, wired from its parts: accounts.ts (who is who, found by the DID's bytes),
// ops.ts (the operations of a phase, per account), plan.ts (phase M built from the columns), revokes.ts
// (phase C), sections.ts and send.ts (a phase as script calls, one round trip), table-memo.ts (what the
// DID table is known to hold), purge.ts, order.ts (overlapping calls, the roll-up cursor), stats.ts.

export interface IndexWriterOptions {
  /** Clock in ms (tests move it). @default Date.now */
  now?: () => number
  /**
   * Byte size of an account's main log before its records spill into per-hour logs. Bigger saves keys
   * (memory) for middling accounts; smaller keeps each script's string search short.
   * @default 8192
   */
  mainLogBytes?: number
  /**
   * Hours an hour that the scheduler's roll-up has not folded yet is kept after it left the 48-hour window
   * (key expiry and compaction wait for the roll-up's cursor this long). Reads still count 48 hours.
   * @default 6 (`DEFAULT_ROLLUP_GRACE_HOURS`)
   */
  rollupGraceHours?: number
  /**
   * Send each account's creates as one section of appends when they allow it (see lua/index-apply.lua).
   * Off, every operation takes the general path: tests compare the two.
   * @default true
   */
  appendSections?: boolean
  /**
   * The cache keys an identity event (with a valid DID) makes stale: the caller's decision (the indexer
   * service names the API's profile and handle caches). They are deleted in the same pipeline as the
   * writes of the call's events up to its next purge. @default none: identity events are only counted
   */
  staleKeysOf?: (event: IdentityEvent) => readonly string[]
}

export interface IndexWriter {
  /**
   * Applies events in order. Idempotent and safe under reordering across calls and processes: applying the
   * same events again, or a create after its delete, leaves the index as if each applied once in order.
   * Throws only when Redis fails (then nothing is lost: apply the same events again). Calls may overlap
   * (the next one started before the previous one resolved): their phases still run in call order.
   */
  apply(events: readonly StreamEvent[]): Promise<ApplyStats>
  /** `apply` of events decoded into columns (what the indexer service reads off the stream). */
  applyColumns(cols: EventColumns): Promise<ApplyStats>
  /**
   * Removes a DID from the index in both directions and refuses its older interactions from now on; then
   * queues it for the scheduler to forget the rest (`schema.forgetQueue`).
   */
  purge(did: string, timeMs: number): Promise<void>
  /**
   * `purge` ordered with apply() calls as a purge event of the stream is (after every earlier call, with
   * none beside it). `timeMs` = FOREVER_MS closes the index to the account until `reopen`.
   */
  purgeInTurn(did: string, timeMs: number): Promise<void>
  /** Takes an account closed by a purge up to FOREVER_MS back: interactions from now on count again. */
  reopen(did: string): Promise<void>
  /**
   * How many times a connection of the writer (its own, or the Redis client it was given) was lost. Redis
   * may have restarted then and lost writes it had already answered (appendfsync everysec), so a caller
   * that acknowledges what it applied (XACK) compares this before the call and after the acknowledgement's
   * reply: if it moved, the acknowledgement may have reached a Redis without the writes, and the events
   * are applied again.
   */
  connectionLosses(): number
  /**
   * Forgets what the writer remembers having written (DID table entries, hour index members, hours, the
   * function library) and counts a connection loss, as when a connection is lost: for a caller that learns
   * in another way that Redis lost data (the indexer's consumer group vanished: FLUSHALL, a restart without
   * persistence). Calls in flight then fail, to be applied again.
   */
  forget(): void
  /**
   * Closes the writer's own connections (its phases go to Redis on connections of their own, see @circles/redis-wire)
   * once the calls in flight have their replies. The Redis client passed in stays the caller's.
   */
  close(): Promise<void>
}

export function createIndexWriter(
  redis: Redis,
  schema: RedisSchema,
  opts: IndexWriterOptions = {},
): IndexWriter {
  const ctx = new WriterContext(redis, schema, opts)
  redis.on('close', ctx.connectionLost)
  return {
    purge: (did, timeMs) => purge(ctx, did, timeMs),
    connectionLosses: () => ctx.losses,
    forget: ctx.connectionLost,
    async close() {
      redis.off('close', ctx.connectionLost)
      await Promise.all([ctx.wire.close(), ctx.lane.close()])
    },
    apply(events) {
      return this.applyColumns(columnsOf(events))
    },
    async applyColumns(cols: EventColumns): Promise<ApplyStats> {
      const stats = emptyStats()
      // Calls overlap, but each sends its phase M only after the previous call sent its own: consecutive
      // calls reach Redis in call order, so every account sees its appends in stream order, which is what
      // decides where records land. A call with a purge runs alone: after every earlier call, and the
      // next call starts only when it is done.
      let alone = false
      for (const e of cols.others.values())
        if (e.type === 'account' && isPurgeStatus(e)) alone = true
      await ctx.order.inTurn(alone, (onSent) => applyEvents(ctx, cols, stats, onSent))
      return stats
    },
    purgeInTurn(did, timeMs) {
      return ctx.order.inTurn(true, () => purge(ctx, did, timeMs))
    },
    async reopen(did) {
      // The mark goes (an account with one reads as deleted to the API and the stats): interactions from
      // now on count. What happened while it was out was refused as it came; an entry delivered that late
      // (reclaimed from a dead indexer after the return) would count: a documented limit.
      await clearPurgeMarks(redis, schema, [did], 'opt-out')
    },
  }
}
