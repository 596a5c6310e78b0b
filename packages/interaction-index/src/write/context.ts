import type { IdentityEvent } from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import { type FrameSender, wireFor } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { DidCache } from '../did-cache.js'
import { DEFAULT_ROLLUP_GRACE_HOURS, keepSeconds, RECORD_SIZE, WINDOW_HOURS } from '../layout.js'
import { Accounts } from './accounts.js'
import type { IndexWriterOptions } from './index-writer.js'
import type { AccountOps } from './ops.js'
import { CallOrder, RollupCursor } from './order.js'

/**
 * What the parts of one writer share: its settings, its connections, the accounts it knows, and what it
 * remembers having written. One object passed to each part (segment.ts, purge.ts...), not a closure that
 * holds them all.
 */
export class WriterContext {
  readonly now: () => number
  readonly appendSections: boolean
  /** Records of each direction the main log takes before spilling. */
  readonly mainLogCap: number
  /** Seconds a record is kept after its hour ends. */
  readonly keep: number
  /** Hours of spill logs that can exist: the window and the roll-up's grace. */
  readonly keepHours: number
  readonly staleKeysOf: ((event: IdentityEvent) => readonly string[]) | undefined
  /**
   * Two connections: phase M of each batch on `wire`, in call order; phase C (revokes, a few per batch) on
   * `lane`, so that it does not queue behind the next batch's phase M. A batch is done (acknowledged) when
   * its phase C is: behind the next phase M, Redis had nothing left to do while this process prepared the
   * batch after (BENCHMARKS.md, "Measurements the code relies on"). C's operations are idempotent revokes of exact
   * records: their order against other batches' appends changes nothing.
   */
  readonly wire: FrameSender
  readonly lane: FrameSender
  readonly cache = new DidCache()
  readonly accounts: Accounts
  readonly opsPool: AccountOps[] = []
  readonly cursor: RollupCursor
  readonly order: CallOrder
  /**
   * The index library goes first in the next pipeline: at the start, and after Redis said it is missing
   * (a restart without persistence). The batch that failed is applied again by the caller, as after any
   * Redis failure.
   */
  loadLibrary = true
  /** Hours this process has put in the index of hours (authors: `Account#indexedHour`). */
  readonly hoursSeen = new Set<number>()
  /** Connections lost so far (see `connectionLost`). */
  losses = 0
  /** The DID table epoch as last read after a call's appends (null: not read yet; see table-memo.ts). */
  tableEpoch: string | null = null
  /** Segments applied so far: the id of the next one (`Account#tabledIn`). */
  segments = 0

  /**
   * What this process remembers having written (DID table entries, hour index members, hours, the
   * library) spares most of those writes, and is true only of the Redis that answered them: one that
   * restarted may have lost the last second of what it answered (appendfsync everysec; a kill -9 while
   * its fsync runs). Redelivered entries would then skip writes that are gone (seen in the kill -9 test:
   * partners missing from answers, their DIDs missing from the table). So a lost connection, the only
   * sign of a restart, forgets all of it, and a call prepared before the loss is not sent after it.
   */
  readonly connectionLost = (): void => {
    this.losses++
    this.loadLibrary = true
    this.accounts.forgetWritten()
    this.hoursSeen.clear()
  }

  constructor(
    readonly redis: Redis,
    readonly schema: RedisSchema,
    opts: IndexWriterOptions,
  ) {
    this.now = opts.now ?? Date.now
    const mainLogBytes = opts.mainLogBytes ?? 8192
    this.appendSections = opts.appendSections ?? true
    this.staleKeysOf = opts.staleKeysOf
    this.mainLogCap = Math.max(1, Math.floor(mainLogBytes / RECORD_SIZE / 2))
    const graceHours = opts.rollupGraceHours ?? DEFAULT_ROLLUP_GRACE_HOURS
    if (!Number.isInteger(graceHours) || graceHours < 1) {
      throw new RangeError(`rollupGraceHours must be an integer >= 1, got ${graceHours}`)
    }
    this.keep = keepSeconds(graceHours)
    this.keepHours = WINDOW_HOURS + graceHours
    this.accounts = new Accounts(schema, this.cache)
    this.wire = wireFor(redis, this.connectionLost)
    this.lane = wireFor(redis, this.connectionLost)
    this.cursor = new RollupCursor(redis, schema, this.keep)
    this.order = new CallOrder(this.cursor, this.now)
  }
}
