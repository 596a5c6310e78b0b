import { createIndexWriter, ensureRedisSettings, LiveSinceMark } from '@circles/interaction-index'
import { createLogger, logConnectionErrors } from '@circles/logging'
import { type MetricsServer, startMetricsServer } from '@circles/metrics'
import { createSchema, shardsOf } from '@circles/redis-schema'
import { connectRedis } from '@circles/redis-wire'
import { type BackoffState, createFaultHandler } from './backoff.js'
import { createBatchApplier } from './batch.js'
import type { IndexerConfig } from './config.js'
import { consume } from './consume-loop.js'
import { createConsumerGroup } from './consumer-group.js'
import {
  copyCounters,
  createMetricsPublisher,
  emptyCounters,
  type IndexerCounters,
} from './metrics.js'
import { createOptOutSync, type OptOutTicker, tickOptOuts } from './opt-out-sync.js'
import { createIndexerRegistry } from './prometheus.js'
import { identityStaleKeys } from './stale-caches.js'

export interface IndexerDeps {
  /** Clock for the index (tests move it). @default Date.now */
  now?: () => number
}

export interface IndexerService {
  start(): Promise<void>
  /**
   * Stops reading, finishes the batch in hand, acknowledges it, closes connections. A batch that Redis
   * refuses meanwhile is left pending, for a restart or another process to apply. Idempotent.
   */
  close(): Promise<void>
  counters(): IndexerCounters
  /** The back-off in progress (Redis refusing work), or null. */
  backoff(): BackoffState | null
}

const log = createLogger('indexer:service')

export function createIndexerService(
  config: IndexerConfig,
  deps: IndexerDeps = {},
): IndexerService {
  const schema = createSchema(config.redisPrefix)
  // Every process reads every stream shard (FIREHOSE_SHARDS), through one consumer group per shard: the
  // groups spread each shard's entries over the indexers, and a dead one's pending entries are claimed
  // by the others (XAUTOCLAIM, per shard), so no shard waits for a given process.
  const shards = shardsOf(schema, config.firehoseShards)
  const me = config.consumer
  // `reads` (one per shard) carry XREADGROUP (it may block), `redis` the acknowledgements, claims and the
  // writer's reads (its writes go on a connection of its own), `control` the metrics: a blocked read
  // delays none of them, nor another shard's.
  const reads = shards.map(() =>
    connectRedis(config, { lazyConnect: true, maxRetriesPerRequest: null }),
  )
  const redis = connectRedis(config, { lazyConnect: true, maxRetriesPerRequest: null })
  const control = connectRedis(config, { lazyConnect: true, maxRetriesPerRequest: 3 })
  for (const r of reads) logConnectionErrors(r, log, 'Redis connection (stream reads)')
  logConnectionErrors(redis, log)
  logConnectionErrors(control, log, 'Redis connection (metrics)')
  const writer = createIndexWriter(redis, schema, {
    now: deps.now,
    mainLogBytes: config.mainLogBytes,
    rollupGraceHours: config.rollupGraceHours,
    staleKeysOf: identityStaleKeys(schema),
  })
  const liveSince = new LiveSinceMark(redis, schema)
  const counters = emptyCounters()
  const groups = shards.map((shard, k) =>
    createConsumerGroup({
      reads: reads[k] as (typeof reads)[number],
      redis,
      schema,
      shard,
      config,
      counters,
      // A Redis that lost the group may have lost everything (FLUSHALL, a restart without data): what the
      // writer remembers having written (DID table entries, hour index) may be gone, as after a restart.
      onRecreated: () => {
        writer.forget()
        liveSince.forget()
      },
      log,
    }),
  )
  const faults = createFaultHandler({
    minMs: config.retryMs,
    maxMs: config.backoffMaxMs,
    counters,
    // NOGROUP does not say which shard: ensuring a group that exists costs one BUSYGROUP reply.
    recreateGroup: async () => {
      await Promise.all(groups.map((g) => g.recreate()))
    },
    log,
  })
  const prom = createIndexerRegistry({
    counters,
    backoff: () => faults.state(),
    control,
    schema,
    shards,
  })
  const noLabels: string[] = []
  const appliers = shards.map((shard) =>
    createBatchApplier({
      writer,
      liveSince,
      redis,
      schema,
      shard,
      config,
      counters,
      faults,
      log,
      onBatchDone: (seconds) => prom.batchDuration.observe(noLabels, seconds),
    }),
  )
  const publishMetrics = createMetricsPublisher({
    control,
    schema,
    shards,
    consumer: me,
    counters,
    backoff: () => faults.state(),
    log,
  })
  const optOuts = createOptOutSync({
    redis,
    schema,
    writer,
    counters,
    log,
  })
  let running = false
  let loop: Promise<void> | null = null
  let metricsTimer: NodeJS.Timeout | null = null
  let prometheus: MetricsServer | null = null
  let optOutTicker: OptOutTicker | null = null
  let closing: Promise<void> | null = null

  return {
    counters: () => copyCounters(counters),
    backoff: () => faults.state(),

    async start() {
      if (running || closing) return
      for (const r of reads) await r.connect()
      await redis.connect()
      await control.connect()
      if (config.applyRedisSettings) {
        const report = await ensureRedisSettings(control)
        if (Object.keys(report.changed).length > 0)
          log.info({ changed: report.changed }, 'raised Redis settings')
        if (Object.keys(report.unmet).length > 0) {
          log.warn(
            { unmet: report.unmet },
            'Redis settings below what the layout needs: memory per interaction will be higher',
          )
        }
      }
      for (const group of groups) {
        await group.ensure()
        await group.prune().catch((err) => log.warn({ err }, 'pruning idle consumers failed'))
      }
      running = true
      const loops = groups.map((group, k) =>
        consume({
          group,
          applyEntries: appliers[k] as (typeof appliers)[number],
          faults,
          counters,
          config,
          running: () => running,
          log,
        }),
      )
      // Every loop runs to its end (each finishes its batches in hand) before close() goes on.
      loop = Promise.allSettled(loops).then((ends) => {
        const failed = ends.find((e) => e.status === 'rejected')
        if (failed) throw failed.reason
      })
      metricsTimer = setInterval(() => void publishMetrics(), config.metricsIntervalMs)
      metricsTimer.unref()
      optOutTicker = tickOptOuts(optOuts, config.optOutSyncMs, log)
      prometheus = await startMetricsServer({
        registry: prom.registry,
        port: config.metricsPort,
        host: config.metricsHost,
        log,
      })
      log.info(
        {
          consumer: me,
          streams: shards.map((s) => s.stream),
          group: schema.indexerGroup,
          prefix: config.redisPrefix,
        },
        'indexer ready',
      )
    },

    close() {
      closing ??= (async () => {
        running = false
        // Waits end now; a batch that fails from here on is left pending instead of retried.
        faults.stop()
        if (metricsTimer) clearInterval(metricsTimer)
        const optOutsStopped = optOutTicker?.stop()
        const errors: unknown[] = []
        // The loop notices `running` after the batch in hand (or after one BLOCK period).
        await loop?.catch((err) => errors.push(err))
        await optOutsStopped
        if (loop) await publishMetrics().catch((err) => errors.push(err))
        await prometheus?.close()
        await writer.close().catch((err) => errors.push(err))
        for (const c of [...reads, redis, control]) {
          await c.quit().catch(() => c.disconnect())
        }
        log.info(
          { consumer: me, events: counters.events, entries: counters.entries },
          'indexer stopped',
        )
        if (errors.length > 0) throw new AggregateError(errors, 'indexer close failed')
      })()
      return closing
    },
  }
}
