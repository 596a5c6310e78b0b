import type { CallInfo } from '@circles/bsky-client'
import { createRegistry, fastHistogram } from '@circles/metrics'
import { type RedisSchema, shardsOf } from '@circles/redis-schema'
import { pipelineFor } from '@circles/redis-wire'
import { parseGroups } from '@circles/stream-info'
import type { Redis } from 'ioredis'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { pipelineValues } from './redis-faults.js'

// One registry per app (not prom-client's global one), so several apps in one test process do not collide.
// Pipeline gauges are read from Redis at scrape time: the API is where an operator looks first.

const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/**
 * The backfill worker's counters (packages/backfill, `schema.backfillStats`), as the other services' are
 * read here: at scrape time, from Redis.
 */
function registerBackfillMetrics(registry: Registry, redis: Redis, schema: RedisSchema): void {
  // One read per scrape for both counters: the registry collects them at once, so the second joins the
  // first's read (one cannot fill the other's values).
  let reading: Promise<Record<string, string> | null> | undefined
  const stats = () => {
    reading ??= redis
      .hgetall(schema.backfillStats)
      .catch(() => null)
      .finally(() => {
        reading = undefined
      })
    return reading
  }
  new Counter({
    name: 'fart_backfill_total',
    help: 'Repo backfills since Redis began (read at scrape time): repos fetched, bytes of their CARs, records read, interactions folded',
    labelNames: ['counter'] as const,
    registers: [registry],
    async collect() {
      const h = await stats()
      this.reset()
      for (const k of ['repos', 'bytes', 'records', 'folded']) {
        this.inc({ counter: k }, Number(h?.[k] ?? 0) || 0)
      }
    },
  })
  new Counter({
    name: 'fart_backfill_failures_total',
    help: 'Repo backfills refused or failed, by reason (bad_signature, timeout, private_address, ...)',
    labelNames: ['reason'] as const,
    registers: [registry],
    async collect() {
      const h = await stats()
      this.reset()
      for (const [k, v] of Object.entries(h ?? {})) {
        if (k.startsWith('failed:')) this.inc({ reason: k.slice(7) }, Number(v) || 0)
      }
    },
  })
}

/** `processMetrics`: the process's own (CPU, memory, event loop) too, for the one app a process serves. */
export function createMetrics(
  redis: Redis,
  schema: RedisSchema,
  processMetrics = false,
  streamShards = 1,
) {
  const registry = processMetrics ? createRegistry() : new Registry()
  // Counted in plain arrays (see fastHistogram): the latency of every request is on the hot path.
  const http = fastHistogram({
    registry,
    name: 'fart_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: HTTP_BUCKETS,
  })
  // One array for every request (fastHistogram copies the values when a series is new): no allocation but
  // the series key's.
  const values = ['', '', '']
  const httpDuration = {
    observe(method: string, route: string, status: number, seconds: number) {
      values[0] = method
      values[1] = route
      values[2] = String(status)
      http.observe(values, seconds)
    },
  }
  // Counted in plain numbers and handed over at scrape time: prom-client hashes the labels on every inc,
  // a measurable share of a cached circle's CPU.
  const outcomes: Record<string, number> = { hit: 0, miss: 0, shared: 0, uncached: 0, none: 0 }
  new Counter({
    name: 'fart_circle_cache_total',
    help: 'Circle requests by cache outcome (hit, miss, shared = waited for another computation, uncached = computed but Redis refused to store it)',
    labelNames: ['outcome'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const [outcome, n] of Object.entries(outcomes)) this.inc({ outcome }, n)
    },
  })
  const appviewCalls = new Counter({
    name: 'fart_appview_calls_total',
    help: 'AppView XRPC calls by method and final status (0 = no response)',
    labelNames: ['nsid', 'status'] as const,
    registers: [registry],
  })
  const appviewDuration = new Histogram({
    name: 'fart_appview_call_duration_seconds',
    help: 'AppView call latency, retries included',
    labelNames: ['nsid'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  const pipeline = new Gauge({
    name: 'fart_pipeline',
    help: 'Pipeline state read from Redis at scrape time: stream_length, indexer_lag_entries, indexer_pending, dead_letters (entries the indexer gave up, kept in the dead-letter stream), firehose_cursor, firehose_cursors_lost (cursors Redis lost), stream_trimmed_unread (entries trimmed before the indexer read them), scheduler_heartbeat_age_seconds',
    labelNames: ['metric'] as const,
    registers: [registry],
    async collect() {
      const state = await readPipelineState(redis, schema, Date.now(), streamShards).catch(
        () => null,
      )
      if (!state) return
      for (const [k, v] of Object.entries(state)) if (v !== null) this.set({ metric: k }, v)
    },
  })
  void pipeline
  registerBackfillMetrics(registry, redis, schema)
  return {
    registry,
    httpDuration,
    circleOutcome(outcome: string) {
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
    },
    onAppViewCall(info: CallInfo) {
      appviewCalls.inc({ nsid: info.nsid, status: String(info.status) })
      appviewDuration.observe({ nsid: info.nsid }, info.latencyMs / 1000)
    },
  }
}

export type Metrics = ReturnType<typeof createMetrics>

export interface PipelineState {
  stream_length: number | null
  indexer_lag_entries: number | null
  indexer_pending: number | null
  dead_letters: number | null
  firehose_cursor: number | null
  firehose_cursors_lost: number | null
  stream_trimmed_unread: number | null
  scheduler_heartbeat_age_seconds: number | null
}

function num(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : Number.NaN
  return Number.isFinite(n) ? n : null
}

/**
 * Stream length, the indexer group's lag and pending count, the cursor and the scheduler's heartbeat age.
 * With stream shards (FIREHOSE_SHARDS), lengths, lag, pending and dead letters are summed over them and the
 * cursor is the lowest (what every shard holds up to).
 */
export async function readPipelineState(
  redis: Redis,
  schema: RedisSchema,
  now = Date.now(),
  streamShards = 1,
): Promise<PipelineState> {
  // Keys of several slots (the stream's, the heartbeat's): on a cluster, several nodes.
  const res = await pipelineFor(redis)
    .xlen(schema.eventStream)
    .get(schema.firehoseCursor)
    .get(schema.schedulerHeartbeat)
    .xlen(schema.indexerDeadLetters)
    .hget(schema.firehoseMetrics, 'cursorsLost')
    .hget(schema.firehoseMetrics, 'trimmedUnread')
    .call('XINFO', 'GROUPS', schema.eventStream)
    .exec()
  // XINFO fails (no such key) until the stream exists; the others fail only when Redis does.
  const [len, cursor, beat, deadLetters, cursorsLost, trimmed] = pipelineValues(
    res?.slice(0, 6) ?? null,
  )
  const group = parseGroups(res?.[6]?.[1]).find((g) => g.name === schema.indexerGroup)
  const beatMs = num(beat)
  const state = {
    stream_length: num(len),
    indexer_lag_entries: group?.lag ?? null,
    indexer_pending: group?.pending ?? null,
    dead_letters: num(deadLetters),
    firehose_cursor: num(cursor),
    firehose_cursors_lost: num(cursorsLost) ?? 0,
    stream_trimmed_unread: num(trimmed) ?? 0,
    scheduler_heartbeat_age_seconds: beatMs === null ? null : Math.max(0, (now - beatMs) / 1000),
  }
  // One pipeline per further shard (its keys share a slot of their own), all at once.
  const further = shardsOf(schema, streamShards).slice(1)
  const replies = await Promise.all(
    further.map((shard) =>
      redis
        .pipeline()
        .xlen(shard.stream)
        .get(shard.cursor)
        .xlen(shard.deadLetters)
        .call('XINFO', 'GROUPS', shard.stream)
        .exec(),
    ),
  )
  const add = (a: number | null, b: number | null) => (a === null || b === null ? null : a + b)
  for (const more of replies) {
    const [sLen, sCursor, sDead] = pipelineValues(more?.slice(0, 3) ?? null)
    const g = parseGroups(more?.[3]?.[1]).find((x) => x.name === schema.indexerGroup)
    state.stream_length = add(state.stream_length, num(sLen))
    state.indexer_lag_entries = add(state.indexer_lag_entries, g?.lag ?? null)
    state.indexer_pending = add(state.indexer_pending, g?.pending ?? null)
    state.dead_letters = add(state.dead_letters, num(sDead))
    const c = num(sCursor)
    state.firehose_cursor =
      state.firehose_cursor === null || c === null ? null : Math.min(state.firehose_cursor, c)
  }
  return state
}
