import { HOUR_MS } from '@circles/core'
import {
  cachedRead,
  createRegistry,
  fastHistogram,
  mergeExposition,
  type Registry,
  scrapeCounters,
  scrapeGauge,
} from '@circles/metrics'
import type { JobKind, RedisSchema } from '@circles/redis-schema'
import { serverMemory } from '@circles/redis-wire'
import type { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import type { LiveHours } from './live-source.js'
import { readRollupCursor } from './rollup.js'
import { readGlobalStats } from './stats.js'

/** Scrape-time reads of Redis are kept this long: INFO and the stats document once per scrape at most. */
const READ_TTL_MS = 5000

export interface SchedulerRegistryDeps {
  redis: Redis
  schema: RedisSchema
  live: Pick<LiveHours, 'hours'>
  liveWindowHours: number
  queues: Readonly<Record<JobKind, Queue>>
  now: () => number
}

export interface SchedulerRegistry {
  registry: Registry
  /** BullMQ's own queue metrics (`bullmq_job_count`, ...), one page for every queue. */
  queueMetrics(): Promise<string>
  /** A job ended: its run time from BullMQ's `processedOn` / `finishedOn`, and whether it failed. */
  jobDone(queue: string, seconds: number | null, failed: boolean): void
}

/**
 * How late the roll-up is: now minus the moment the oldest hour it has not folded left the live window
 * (0 when none is due). An hour H leaves it once the current hour is H + liveWindowHours (rollup.ts).
 */
export async function rollupLateness(d: SchedulerRegistryDeps): Promise<number> {
  const [cursor, hours] = await Promise.all([readRollupCursor(d.redis, d.schema), d.live.hours()])
  const due = hours.filter((h) => cursor === null || h > cursor)
  if (due.length === 0) return 0
  const leftAt = (Math.min(...due) + d.liveWindowHours) * HOUR_MS
  return Math.max(0, d.now() - leftAt) / 1000
}

/**
 * Redis memory and the interactions of the live window (the last global stats document's hours). On a
 * cluster, every primary's memory summed (redis-wire `serverMemory`); the limit is 0 (none) when one of them
 * has none.
 */
async function memoryReading(d: SchedulerRegistryDeps) {
  const [mem, stats] = await Promise.all([
    serverMemory(d.redis),
    readGlobalStats(d.redis, d.schema),
  ])
  let interactions: number | null = null
  if (stats !== null) {
    interactions = 0
    for (const h of stats.hours) interactions += h.like + h.repost + h.reply + h.quote
  }
  return { used: mem.used, max: mem.maxmemory, interactions }
}

/** The scheduler's /metrics: job runs (from worker events), roll-up lateness, Redis memory. */
export function createSchedulerRegistry(d: SchedulerRegistryDeps): SchedulerRegistry {
  const registry = createRegistry()
  const p = 'circles_scheduler_'
  const completed: Record<string, number> = {}
  const failed: Record<string, number> = {}
  const duration = fastHistogram({
    registry,
    name: `${p}job_duration_seconds`,
    help: 'Run time of the jobs this process ran, by queue (BullMQ processedOn to finishedOn)',
    labelNames: ['queue'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600],
  })
  scrapeCounters(
    {
      registry,
      name: `${p}jobs_completed_total`,
      help: 'Jobs this process completed, by queue',
      label: 'queue',
    },
    () => completed,
  )
  scrapeCounters(
    {
      registry,
      name: `${p}jobs_failed_total`,
      help: 'Job attempts that failed in this process, by queue (each retry counts)',
      label: 'queue',
    },
    () => failed,
  )
  const lateness = cachedRead(() => rollupLateness(d), READ_TTL_MS)
  scrapeGauge(
    {
      registry,
      name: `${p}rollup_lateness_seconds`,
      help: 'Now minus when the oldest hour not yet rolled up left the live window (0: none due)',
    },
    lateness,
  )
  const memory = cachedRead(() => memoryReading(d), READ_TTL_MS)
  scrapeGauge(
    { registry, name: 'circles_redis_used_memory_bytes', help: 'Redis used_memory (INFO memory)' },
    async () => (await memory())?.used ?? null,
  )
  scrapeGauge(
    {
      registry,
      name: 'circles_redis_maxmemory_bytes',
      help: 'Redis maxmemory (0: no limit, which the doctor warns about)',
    },
    async () => (await memory())?.max ?? null,
  )
  scrapeGauge(
    {
      registry,
      name: 'circles_index_interactions',
      help: 'Interactions in the live window, from the last global stats document (the stats job)',
    },
    async () => (await memory())?.interactions ?? null,
  )
  scrapeGauge(
    {
      registry,
      name: 'circles_redis_bytes_per_interaction',
      help: 'Redis used_memory divided by the interactions in the live window (everything Redis holds, counted per interaction)',
    },
    async () => {
      const m = await memory()
      return m?.interactions ? m.used / m.interactions : null
    },
  )
  return {
    registry,
    async queueMetrics() {
      // Without Redis there are no queue figures, but the rest of the page (process, jobs run) still is.
      const pages = await Promise.all(
        Object.values(d.queues).map((q) => q.exportPrometheusMetrics().catch(() => '')),
      )
      return mergeExposition(pages)
    },
    jobDone(queue, seconds, jobFailed) {
      const counts = jobFailed ? failed : completed
      counts[queue] = (counts[queue] ?? 0) + 1
      if (seconds !== null) duration.observe([queue], seconds)
    },
  }
}
