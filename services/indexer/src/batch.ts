import { EVENT_CREATE, type EventColumns } from '@circles/core'
import type { IndexWriter, LiveSinceMark } from '@circles/interaction-index'
import type { Logger } from '@circles/logging'
import type { RedisSchema, ShardKeys } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { FaultHandler } from './backoff.js'
import type { IndexerConfig } from './config.js'
import { acknowledge } from './dead-letter.js'
import { type DecodedBatch, decodeEntries, type PoisonEntry, type RawEntry } from './entries.js'
import { addStats, type IndexerCounters } from './metrics.js'

/**
 * Attempts of a batch that fails with an error about its data before it is split (and of a lone entry
 * before it is given up): a few, in case the error was not the data's after all.
 */
const DATA_ATTEMPTS = 3

/**
 * Entries given up in a row for a Redis data error (no batch applied in between) before the next one is
 * taken for a fault of a key many entries share (a DID table bucket, an hour index shard of the wrong
 * type): then the indexer backs off instead, keeping the entries, until a batch goes through again.
 */
const DATA_STREAK_LIMIT = 3

export interface BatchDeps {
  writer: IndexWriter
  /** Where the live stream's coverage begins: lowered before a batch is applied (repo backfills read it). */
  liveSince: LiveSinceMark
  redis: Redis
  schema: RedisSchema
  /** The stream shard whose entries this applier takes (and acknowledges). */
  shard: ShardKeys
  config: IndexerConfig
  counters: IndexerCounters
  faults: FaultHandler
  log: Logger
  /** Seconds from a batch's read to its acknowledgement (the /metrics histogram). */
  onBatchDone?: (seconds: number) => void
}

type WriteOutcome =
  | { kind: 'written'; losses: number }
  | { kind: 'split' }
  | { kind: 'poison'; losses: number; error: string }

/** Applies batches of entries and acknowledges each once its writes succeeded. */
export function createBatchApplier(d: BatchDeps): (entries: RawEntry[]) => Promise<void> {
  const { writer, counters, faults, log, config } = d
  let dataStreak = 0

  async function applyEntries(entries: RawEntry[]): Promise<void> {
    if (entries.length === 0) return
    const started = performance.now()
    const batch = decodeEntries(entries)
    counters.badLines += batch.badLines
    counters.badEntries += batch.badEntries
    if (batch.lost.length > 0) {
      counters.lostEntries += batch.lost.length
      log.warn(
        { ids: batch.lost.slice(0, 20).map(String), count: batch.lost.length },
        'pending entries were deleted from the stream (trimmed?) before they were applied: lost',
      )
    }
    // Before the writes: a mark a little early only makes a backfill leave to the stream what it delivers.
    await persist('marking where live coverage begins', () =>
      d.liveSince.note(earliestCreate(batch.events)),
    )
    for (;;) {
      const outcome = await writeBatch(entries, batch)
      if (outcome.kind === 'split') return
      const letters: PoisonEntry[] =
        outcome.kind === 'poison' ? poisonOf(entries, outcome.error) : batch.poison
      // Only now: the writes succeeded (or the entry is given up as poison and copied first, in the same
      // MULTI), so the entries can go.
      const acked = await persist('acknowledging a batch', () =>
        acknowledge(
          d.redis,
          d.schema,
          d.shard,
          batch.ids,
          letters,
          config.consumer,
          config.deadLetterMaxLen,
        ),
      )
      // And only if the acknowledgement reached the Redis that answered the writes: one that restarted in
      // between may have lost them (appendfsync everysec) while the XACK, queued by ioredis, reached it.
      if (writer.connectionLosses() === outcome.losses) {
        faults.succeeded()
        noteAck(batch, letters, acked)
        break
      }
      counters.retries++
      log.warn('a connection to Redis was lost while a batch was written: writing it again')
    }
    counters.entries += entries.length
    counters.events += batch.events.length
    counters.batches++
    d.onBatchDone?.((performance.now() - started) / 1000)
  }

  function noteAck(batch: DecodedBatch, letters: PoisonEntry[], acked: number): void {
    if (letters.length > 0) {
      counters.deadLetters += letters.length
      for (const l of letters)
        log.error({ id: String(l.id), error: l.error }, 'entry copied to the dead-letter stream')
    }
    if (acked < batch.ids.length) {
      counters.ackMissed += batch.ids.length - acked
      log.info(
        { entries: batch.ids.length, acked },
        'applied entries were no longer pending here (group created again, or taken over)',
      )
    }
  }

  /** One entry's dead letter for an error of Redis about its data (the decode fault, if any, too). */
  function poisonOf(entries: RawEntry[], error: string): PoisonEntry[] {
    const [id, fields] = entries[0] as RawEntry
    return fields === null ? [] : [{ id, fields, error }]
  }

  /**
   * Applies a batch, retrying. A server condition backs off as long as it lasts; an error about the data
   * is retried a few times, then splits the batch into its entries, and an entry that fails alone is
   * given up (unless too many were in a row: see DATA_STREAK_LIMIT).
   */
  async function writeBatch(entries: RawEntry[], batch: DecodedBatch): Promise<WriteOutcome> {
    for (let attempt = 1, dataAttempt = 0; ; attempt++) {
      const losses = writer.connectionLosses()
      try {
        if (batch.events.length > 0) addStats(counters, await writer.applyColumns(batch.events))
        dataStreak = 0
        return { kind: 'written', losses }
      } catch (err) {
        counters.retries++
        const c = await faults.failed(err, attempt, 'applying a batch')
        if (c.action !== 'isolate') continue
        if (++dataAttempt < DATA_ATTEMPTS) {
          log.warn({ err, attempt: dataAttempt }, 'a batch failed on its data, retrying')
          await sleep(config.retryMs)
          continue
        }
        if (entries.length > 1) {
          log.warn({ err }, 'batch keeps failing, applying its entries one by one')
          for (const entry of entries) await applyEntries([entry])
          return { kind: 'split' }
        }
        if (dataStreak >= DATA_STREAK_LIMIT) {
          dataAttempt = 0
          await faults.backOff(
            c.kind,
            attempt,
            'entries keep failing on their data: a shared key?',
            err,
          )
          continue
        }
        dataStreak++
        return { kind: 'poison', losses, error: (err as Error).message }
      }
    }
  }

  /** Runs `op` until it goes through, backing off as long as Redis refuses. */
  async function persist<T>(what: string, op: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await op()
      } catch (err) {
        counters.retries++
        const c = await faults.failed(err, attempt, what)
        // no entry to give up here: a data error waits like the rest
        if (c.action === 'isolate') await faults.backOff(c.kind, attempt, what, err)
      }
    }
  }

  return applyEntries
}

/** The earliest event time of a batch's creates (Infinity when it has none). */
function earliestCreate(cols: EventColumns): number {
  let min = Number.POSITIVE_INFINITY
  for (let i = 0; i < cols.length; i++) {
    if (cols.type[i] === EVENT_CREATE && (cols.time[i] as number) < min)
      min = cols.time[i] as number
  }
  return min
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
