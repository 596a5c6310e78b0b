import type { InteractionKind } from '@circles/core'
import type { HourIdBatch, HourRow as IndexHourRow } from '@circles/interaction-index'
import type { RollupFence } from './fence.js'

/**
 * One (author, subject, kind) count of one hour of the live index: the index's row with the kind not yet
 * checked, since a source other than the index (tests) may hand one the roll-up must skip.
 */
export type HourRow = Omit<IndexHourRow, 'kind'> & { kind: InteractionKind | string }

/**
 * What the scheduler needs from the live 48-hour index. The service adapts the indexer's reader to it;
 * tests can feed it directly. Kept this small so the jobs do not depend on the index's key layout.
 */
export interface LiveHours {
  /** Hours (since the epoch) that still hold data in the live index, ascending. */
  hours(): Promise<number[]>
  /** Every (author, subject, kind) count of one hour, in batches; resolves after the last batch. */
  scanHour(hour: number, onBatch: (rows: HourRow[]) => Promise<void>): Promise<void>
  /**
   * The roll-up's fast read, when the source has it (the live index does; sources in memory need not):
   * the same hour as records of ids, and the DIDs of ids, asked once per account.
   */
  ids?: {
    scanHour(hour: number, onBatch: (batch: HourIdBatch) => Promise<void>): Promise<void>
    resolve(ids: Buffer): Promise<(string | undefined)[]>
  }
  /**
   * Frees one hour of the live index once it is rolled up. Must be idempotent. Writes to Redis go through
   * `fence.free`, so a runner that lost the roll-up lock frees nothing.
   */
  freeHour(hour: number, fence: RollupFence): Promise<void>
}
