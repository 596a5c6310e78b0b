import { type ApplyStats, emptyStats } from '@circles/interaction-index'
import type { Logger } from '@circles/logging'
import type { RedisSchema, ShardKeys } from '@circles/redis-schema'
import { parseGroups } from '@circles/stream-info'
import type { Redis } from 'ioredis'
import type { BackoffState } from './backoff.js'
import type { RedisErrorKind } from './errors.js'

/**
 * The indexer's own counters, zeroed: the one list of their names. IndexerCounters is read off it (the
 * writer's ApplyStats on top), so a new counter is one line here, not a field and a zero in two lists.
 */
function ownCounters() {
  return {
    entries: 0,
    events: 0,
    batches: 0,
    claimed: 0,
    badLines: 0,
    badEntries: 0,
    /** Entries copied to the dead-letter stream, then acknowledged: their own data cannot be applied. */
    deadLetters: 0,
    /** Entries deleted from the stream (trimmed, XDEL) while pending: they could not be applied. */
    lostEntries: 0,
    /** Times this process created the consumer group again after it vanished (NOGROUP). */
    groupRecreated: 0,
    /**
     * Entries applied whose XACK found them no longer pending here: the group was created again meanwhile
     * (they are delivered again, and applying them twice changes nothing), or another consumer took them.
     */
    ackMissed: 0,
    retries: 0,
    /** Accounts whose index was closed (purged) because they opted out, and reopened because they came back. */
    optOutPurges: 0,
    optOutReopens: 0,
    /** Failures Redis recovers from, by kind (errors.ts); each one waited a back-off. */
    errors: {} as Partial<Record<RedisErrorKind, number>>,
  }
}

/** Counters of one indexer process since it started. */
export type IndexerCounters = ApplyStats & ReturnType<typeof ownCounters>

export function emptyCounters(): IndexerCounters {
  return { ...emptyStats(), ...ownCounters() }
}

export function copyCounters(c: IndexerCounters): IndexerCounters {
  return { ...c, errors: { ...c.errors } }
}

export function addStats(c: IndexerCounters, s: ApplyStats): void {
  for (const k of Object.keys(s) as (keyof ApplyStats)[]) c[k] += s[k]
}

/**
 * Field-wise `a - b`, for the deltas each process adds to the shared metrics hash; errors by kind as
 * `errors:<kind>`.
 */
export function diffCounters(a: IndexerCounters, b: IndexerCounters): Record<string, number> {
  const out: Record<string, number> = {}
  for (const k of Object.keys(a) as (keyof IndexerCounters)[]) {
    if (k === 'errors') continue
    const d = a[k] - b[k]
    if (d !== 0) out[k] = d
  }
  for (const [kind, n] of Object.entries(a.errors)) {
    const d = n - (b.errors[kind as RedisErrorKind] ?? 0)
    if (d !== 0) out[`errors:${kind}`] = d
  }
  return out
}

/**
 * The indexer group's lag and pending entries summed over the stream shards (one XINFO each: on a cluster
 * they live on different nodes); null where a shard's is unknown (no group, or Redis cannot tell).
 */
export async function readGroupTotals(
  control: Redis,
  schema: RedisSchema,
  shards: readonly ShardKeys[],
): Promise<{ lag: number | null; pending: number | null }> {
  const groups = await Promise.all(
    shards.map(async (s) =>
      parseGroups(await control.call('XINFO', 'GROUPS', s.stream)).find(
        (g) => g.name === schema.indexerGroup,
      ),
    ),
  )
  const total = (f: (g: NonNullable<(typeof groups)[number]>) => number | null) => {
    let n = 0
    for (const g of groups) {
      const v = g ? f(g) : null
      if (v === null) return null
      n += v
    }
    return n
  }
  return { lag: total((g) => g.lag), pending: total((g) => g.pending) }
}

export interface MetricsDeps {
  /** A connection of its own: a blocked read or a retried batch delays no report. */
  control: Redis
  schema: RedisSchema
  shards: readonly ShardKeys[]
  consumer: string
  counters: IndexerCounters
  backoff: () => BackoffState | null
  log: Logger
}

/**
 * Publishes the counters' deltas into the shared metrics hash and logs the metrics line. One publication
 * at a time: two in flight would both add the same delta to the shared counters. While Redis refuses
 * writes (OOM, BUSY, ...) the hash cannot take them: the deltas wait for the next report, and the log line
 * (back-off state included) is what shows the outage.
 */
export function createMetricsPublisher(d: MetricsDeps): () => Promise<void> {
  const { control, schema, counters } = d
  let published = emptyCounters()
  let lastRate = { at: Date.now(), events: 0 }
  let publishing: Promise<void> = Promise.resolve()

  async function publishOnce(): Promise<void> {
    const nowMs = Date.now()
    const rate = ((counters.events - lastRate.events) * 1000) / Math.max(1, nowMs - lastRate.at)
    lastRate = { at: nowMs, events: counters.events }
    const backoff = d.backoff()
    let lag: number | null = null
    let pending: number | null = null
    try {
      const group = await readGroupTotals(control, schema, d.shards)
      lag = group.lag
      pending = group.pending
      const snapshot = copyCounters(counters)
      const delta = diffCounters(snapshot, published)
      const pipe = control.pipeline()
      for (const [k, v] of Object.entries(delta)) pipe.hincrby(schema.indexerMetrics, k, v)
      pipe.hset(schema.indexerMetrics, {
        lag: lag ?? -1,
        pending: pending ?? -1,
        [`rate:${d.consumer}`]: Math.round(rate),
        [`seen:${d.consumer}`]: nowMs,
        [`backoff:${d.consumer}`]: backoff ? JSON.stringify(backoff) : '',
        updatedAt: nowMs,
      })
      const res = await pipe.exec()
      for (const [err] of res ?? []) if (err) throw err
      published = snapshot
    } catch (err) {
      d.log.warn({ err }, 'publishing metrics failed')
    }
    d.log.info(
      {
        rate: Math.round(rate),
        lag,
        pending,
        events: counters.events,
        added: counters.added,
        refused: counters.refused,
        deadLetters: counters.deadLetters,
        lostEntries: counters.lostEntries,
        groupRecreated: counters.groupRecreated,
        errors: counters.errors,
        backoff,
      },
      'indexer metrics',
    )
  }

  return () => {
    publishing = publishing.then(publishOnce, publishOnce)
    return publishing
  }
}
