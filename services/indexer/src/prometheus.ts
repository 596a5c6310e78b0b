import {
  cachedRead,
  createRegistry,
  type FastHistogram,
  fastHistogram,
  type Registry,
  scrapeCounters,
  scrapeGauge,
  scrapeTotals,
} from '@circles/metrics'
import type { RedisSchema, ShardKeys } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { BackoffState } from './backoff.js'
import { type IndexerCounters, readGroupTotals } from './metrics.js'

type Field = Exclude<keyof IndexerCounters, 'errors'>

/** What the writer did with the events it applied, by outcome (`circles_indexer_applied_total`). */
const APPLIED: Record<string, Field> = {
  creates: 'creates',
  added: 'added',
  deletes: 'deletes',
  removed: 'removed',
  purges: 'purges',
  identities: 'identities',
  opt_out_events: 'optOutEvents',
  opt_outs_moved: 'optOutsMoved',
}

/** What was not applied, by reason (`circles_indexer_skipped_total`). */
const SKIPPED: Record<string, Field> = {
  duplicate: 'duplicates',
  refused: 'refused',
  expired: 'expired',
  invalid: 'invalid',
  bad_line: 'badLines',
  bad_entry: 'badEntries',
  lost_entry: 'lostEntries',
}

/** Counters whose Prometheus name is `circles_indexer_<name>_total`, with the help text. */
const TOTALS: [Field, string, string][] = [
  ['events', 'events', 'Events applied (every kind)'],
  ['entries', 'entries', 'Stream entries applied and acknowledged'],
  ['batches', 'batches', 'Batches applied'],
  ['claimed', 'claimed', 'Entries taken over from consumers that held them too long (XAUTOCLAIM)'],
  ['deadLetters', 'dead_letters', 'Entries given up and copied to the dead-letter stream'],
  ['retries', 'retries', 'Batch writes retried'],
  [
    'groupRecreated',
    'group_recreated',
    'Times the consumer group was created again (Redis lost it)',
  ],
  ['ackMissed', 'ack_missed', 'Applied entries no longer pending here at their XACK'],
]

export interface IndexerRegistry {
  registry: Registry
  batchDuration: FastHistogram
}

export interface IndexerRegistryDeps {
  counters: IndexerCounters
  backoff: () => BackoffState | null
  /** The metrics connection: the group's lag and pending count are read from it at scrape time. */
  control: Redis
  schema: RedisSchema
  shards: readonly ShardKeys[]
}

/** The indexer's /metrics: its counters (metrics.ts) and the group's state, read when Prometheus scrapes. */
export function createIndexerRegistry(d: IndexerRegistryDeps): IndexerRegistry {
  const { counters, schema } = d
  const registry = createRegistry()
  const p = 'circles_indexer_'
  const pick = (fields: Record<string, Field>) => () =>
    Object.fromEntries(Object.entries(fields).map(([label, f]) => [label, counters[f]]))
  scrapeCounters(
    {
      registry,
      name: `${p}applied_total`,
      help: 'Events applied to the index by outcome: creates seen, added, deletes, removed, purges, identities, opt-out events, opt-outs moved',
      label: 'outcome',
    },
    pick(APPLIED),
  )
  scrapeCounters(
    {
      registry,
      name: `${p}skipped_total`,
      help: 'Events or entries not applied, by reason (duplicate, refused, expired, invalid, bad_line, bad_entry, lost_entry)',
      label: 'reason',
    },
    pick(SKIPPED),
  )
  scrapeTotals(registry, p, TOTALS, counters)
  scrapeCounters(
    {
      registry,
      name: `${p}redis_errors_total`,
      help: 'Failures Redis recovers from, by kind (oom, busy, loading, connection, ...): each waited a back-off',
      label: 'kind',
    },
    () => counters.errors as Record<string, number>,
  )
  scrapeGauge(
    {
      registry,
      name: `${p}backing_off`,
      help: '1 while this process waits for Redis to take work again',
    },
    () => (d.backoff() ? 1 : 0),
  )
  const group = cachedRead(() => readGroupTotals(d.control, schema, d.shards), 2000)
  scrapeGauge(
    {
      registry,
      name: `${p}group_lag_entries`,
      help: 'Stream entries the consumer group has not read yet, every shard (XINFO GROUPS lag, read at scrape time)',
    },
    async () => (await group())?.lag ?? null,
  )
  scrapeGauge(
    {
      registry,
      name: `${p}group_pending_entries`,
      help: 'Entries delivered to the group and not yet acknowledged, every consumer (read at scrape time)',
    },
    async () => (await group())?.pending ?? null,
  )
  const batchDuration = fastHistogram({
    registry,
    name: `${p}batch_duration_seconds`,
    help: 'Time from a batch read to its acknowledgement',
    labelNames: [],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  })
  return { registry, batchDuration }
}
