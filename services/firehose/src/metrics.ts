import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { FrameResult } from './frame-result.js'

/** Counters since the process started. */
export interface Counters {
  frames: number
  commits: number
  events: number
  interactions: number
  identity: number
  account: number
  self: number
  /** Frames whose seq was not above the cursor (a relay replaying what we already have). */
  stale: number
  flushes: number
  entries: number
  reconnects: number
  backpressurePauses: number
  /** Times the socket was paused while a write was in flight (in-memory backpressure). */
  socketPauses: number
  stalls: number
  /** Times Redis held no cursor where it had held one for us (it lost its data): resumed from ours. */
  cursorsLost: number
  /** Skips by reason (core's reject reasons and the decoder's own). */
  skipped: Record<string, number>
  /** Error frames by error name (FutureCursor, ConsumerTooSlow, ...). */
  errorFrames: Record<string, number>
}

/** Gauges: the latest value wins. */
export interface Gauges {
  cursor: number | null
  lag: number | null
  lagSource: string
  streamLength: number | null
  /** The relay's time of the last frame written (ms): now minus this is how far behind the relay we are. */
  relayTimeMs: number | null
  /** Entries trimmed from the stream before the indexer read them (see stream-lag.ts): events lost. */
  trimmedUnread: number
  /** Per stream shard ('0', '1', ...): the indexer group's lag there, at the last lag check. */
  shardLag: Record<string, number>
  state: 'starting' | 'connecting' | 'reading' | 'paused' | 'backoff' | 'stopped'
}

export function newCounters(): Counters {
  return {
    frames: 0,
    commits: 0,
    events: 0,
    interactions: 0,
    identity: 0,
    account: 0,
    self: 0,
    stale: 0,
    flushes: 0,
    entries: 0,
    reconnects: 0,
    backpressurePauses: 0,
    socketPauses: 0,
    stalls: 0,
    cursorsLost: 0,
    skipped: {},
    errorFrames: {},
  }
}

export function countFrame(c: Counters, r: FrameResult): void {
  c.frames++
  if (r.kind === 'commit') c.commits++
  c.events += r.events.length
  c.interactions += r.interactions
  c.self += r.self
  if (r.kind === 'identity' && r.events.length > 0) c.identity++
  if (r.kind === 'account' && r.events.length > 0) c.account++
  if (r.skipped !== null) for (const reason of r.skipped) bump(c.skipped, reason)
}

export function bump(map: Record<string, number>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by
}

function flatten(c: Counters): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === 'number') out[k] = v
  }
  for (const [k, v] of Object.entries(c.skipped)) out[`skipped:${k}`] = v
  for (const [k, v] of Object.entries(c.errorFrames)) out[`error:${k}`] = v
  return out
}

/**
 * Logs one line per interval and mirrors it into the metrics hash: counters as HINCRBY deltas (so they
 * accumulate across restarts), rates and gauges as HSET. The API reads the hash for its stats.
 */
export class MetricsReporter {
  private last: Record<string, number> = {}
  private lastAt = Date.now()
  private timer: NodeJS.Timeout | null = null

  constructor(
    private readonly redis: Redis,
    private readonly schema: RedisSchema,
    private readonly log: Logger,
    readonly counters: Counters,
    readonly gauges: Gauges,
  ) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.report().catch((err) => this.log.warn({ err }, 'could not store firehose metrics'))
    }, intervalMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** Computes rates since the previous report, logs them and stores everything in Redis. */
  async report(): Promise<void> {
    const now = Date.now()
    const seconds = Math.max(0.001, (now - this.lastAt) / 1000)
    const current = flatten(this.counters)
    const delta: Record<string, number> = {}
    for (const [k, v] of Object.entries(current)) {
      const d = v - (this.last[k] ?? 0)
      if (d !== 0) delta[k] = d
    }
    const rates = {
      commitsPerSecond: Math.round((delta.commits ?? 0) / seconds),
      eventsPerSecond: Math.round((delta.events ?? 0) / seconds),
      interactionsPerSecond: Math.round((delta.interactions ?? 0) / seconds),
    }
    const { cursor, lag, lagSource, streamLength, relayTimeMs, trimmedUnread, state } = this.gauges
    const lagMs = relayTimeMs === null ? null : Math.max(0, now - relayTimeMs)
    this.log.info(
      {
        ...rates,
        cursor,
        lagMs,
        indexerLag: lag,
        lagSource,
        streamLength,
        trimmedUnread,
        state,
        reconnects: this.counters.reconnects,
        skipped: this.counters.skipped,
        errorFrames: this.counters.errorFrames,
      },
      'firehose metrics',
    )
    const pipeline = this.redis.pipeline()
    for (const [k, d] of Object.entries(delta)) pipeline.hincrby(this.schema.firehoseMetrics, k, d)
    pipeline.hset(this.schema.firehoseMetrics, {
      ...rates,
      cursor: cursor ?? '',
      lagMs: lagMs ?? '',
      indexerLag: lag ?? '',
      lagSource,
      streamLength: streamLength ?? '',
      trimmedUnread,
      state,
      updatedAt: now,
    })
    const results = await pipeline.exec()
    const failed = results?.find(([err]) => err !== null)
    if (failed?.[0]) throw failed[0]
    // Only now: when storing fails, the next report carries these deltas too.
    this.last = current
    this.lastAt = now
  }
}
