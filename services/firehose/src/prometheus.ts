import {
  createRegistry,
  type Registry,
  scrapeCounters,
  scrapeGauge,
  scrapeGauges,
  scrapeTotals,
} from '@circles/metrics'
import type { Counters, Gauges } from './metrics.js'

const STATES: readonly Gauges['state'][] = [
  'starting',
  'connecting',
  'reading',
  'paused',
  'backoff',
  'stopped',
]

/** Counters whose Prometheus name is `circles_firehose_<name>_total`, with the help text. */
const TOTALS: [keyof Counters, string, string][] = [
  ['frames', 'frames', 'Relay frames read (commits, identity, account, info, ...)'],
  ['commits', 'commits', 'Commit frames read'],
  [
    'events',
    'events_published',
    'Events published to the stream (interactions, deletes, identity, account changes)',
  ],
  ['interactions', 'interactions', 'Interaction creates among the events published'],
  [
    'stale',
    'stale_frames',
    'Frames at or below the stored cursor (a relay replaying what we have), dropped',
  ],
  ['flushes', 'flushes', 'Batches written to Redis (one MULTI each)'],
  [
    'entries',
    'stream_entries',
    'Stream entries written (each carries up to FIREHOSE_EVENTS_PER_ENTRY events)',
  ],
  ['reconnects', 'reconnects', 'Relay connections opened again after the first'],
  ['stalls', 'stalls', 'Connections dropped because the relay went silent (FIREHOSE_STALL_MS)'],
  [
    'backpressurePauses',
    'backpressure_pauses',
    'Times reading stopped because the indexer fell behind (FIREHOSE_MAX_LAG)',
  ],
  [
    'socketPauses',
    'socket_pauses',
    'Times the socket was paused while a write to Redis was in flight',
  ],
  [
    'cursorsLost',
    'cursors_lost',
    'Times Redis held no cursor where it had held ours (it lost its data)',
  ],
]

/**
 * The firehose's /metrics: its counters and gauges (metrics.ts), read when Prometheus scrapes. Names in
 * docs/metrics.md.
 */
export function createFirehoseRegistry(counters: Counters, gauges: Gauges): Registry {
  const registry = createRegistry()
  const p = 'circles_firehose_'
  scrapeTotals(registry, p, TOTALS, counters)
  scrapeCounters(
    {
      registry,
      name: `${p}skipped_total`,
      help: 'Records skipped by reason (malformed CBOR, invalid subject, too old, ...): counted, never fatal',
      label: 'reason',
    },
    () => counters.skipped,
  )
  scrapeCounters(
    {
      registry,
      name: `${p}error_frames_total`,
      help: 'Error frames from the relay by error (FutureCursor, ConsumerTooSlow, ...)',
      label: 'error',
    },
    () => counters.errorFrames,
  )
  scrapeGauge(
    { registry, name: `${p}cursor`, help: 'The last seq published (the stored cursor)' },
    () => gauges.cursor,
  )
  scrapeGauge(
    {
      registry,
      name: `${p}relay_lag_seconds`,
      help: 'How far behind the relay: now minus the relay time of the last event published',
    },
    () =>
      gauges.relayTimeMs === null ? null : Math.max(0, Date.now() - gauges.relayTimeMs) / 1000,
  )
  scrapeGauge(
    {
      registry,
      name: `${p}stream_length`,
      help: 'Entries in the event stream (every shard, at the last lag check)',
    },
    () => gauges.streamLength,
  )
  scrapeGauge(
    {
      registry,
      name: `${p}stream_lag_entries`,
      help: 'Stream entries the indexer group has not read yet (every shard, at the last lag check)',
    },
    () => gauges.lag,
  )
  scrapeGauges(
    {
      registry,
      name: `${p}shard_lag_entries`,
      help: 'Per stream shard (FIREHOSE_SHARDS): entries the indexer group has not read yet; the firehose pauses on the highest',
      label: 'shard',
    },
    () => gauges.shardLag,
  )
  scrapeGauge(
    {
      registry,
      name: `${p}stream_trimmed_unread`,
      help: 'Entries trimmed from the stream before the indexer read them: events lost',
    },
    () => gauges.trimmedUnread,
  )
  scrapeGauges(
    {
      registry,
      name: `${p}state`,
      help: 'The reading state (1 for the current one)',
      label: 'state',
    },
    () => Object.fromEntries(STATES.map((s) => [s, s === gauges.state ? 1 : 0])),
  )
  return registry
}
