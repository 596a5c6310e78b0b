import { createIndexWriter, ensureRedisSettings } from '@circles/interaction-index'
import { createLogger, logConnectionErrors } from '@circles/logging'
import { createSchema } from '@circles/redis-schema'
import { Redis } from 'ioredis'
import { type BackoffState, createFaultHandler, IndexerStopping } from './backoff.js'
import { createBatchApplier } from './batch.js'
import type { IndexerConfig } from './config.js'
import { createConsumerGroup } from './consumer-group.js'
import type { RawEntry } from './entries.js'
import {
  copyCounters,
  createMetricsPublisher,
  emptyCounters,
  type IndexerCounters,
} from './metrics.js'
import { createOptOutSync } from './opt-out-sync.js'
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

/**
 * Batches applied at once by one process (see run). Three, not two: with two, the batch after next was
 * prepared only once Redis had written the next one (about 12 % fewer interactions/s in paired runs:
 * BENCHMARKS.md, "Measurements the code relies on").
 */
const IN_FLIGHT = 3

export function createIndexerService(
  config: IndexerConfig,
  deps: IndexerDeps = {},
): IndexerService {
  const schema = createSchema(config.redisPrefix)
  const me = config.consumer
  // `reads` carries XREADGROUP (it may block), `redis` the acknowledgements, claims and the writer's reads
  // (its writes go on a connection of its own), `control` the metrics: a blocked read delays none of them.
  const reads = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null })
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null })
  const control = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 })
  logConnectionErrors(reads, log, 'Redis connection (stream reads)')
  logConnectionErrors(redis, log)
  logConnectionErrors(control, log, 'Redis connection (metrics)')
  const writer = createIndexWriter(redis, schema, {
    now: deps.now,
    mainLogBytes: config.mainLogBytes,
    rollupGraceHours: config.rollupGraceHours,
    staleKeysOf: identityStaleKeys(schema),
  })
  const counters = emptyCounters()
  const group = createConsumerGroup({
    reads,
    redis,
    schema,
    config,
    counters,
    // A Redis that lost the group may have lost everything (FLUSHALL, a restart without data): what the
    // writer remembers having written (DID table entries, hour index) may be gone, as after a restart.
    onRecreated: () => writer.forget(),
    log,
  })
  const faults = createFaultHandler({
    minMs: config.retryMs,
    maxMs: config.backoffMaxMs,
    counters,
    recreateGroup: () => group.recreate(),
    log,
  })
  const applyEntries = createBatchApplier({
    writer,
    redis,
    schema,
    config,
    counters,
    faults,
    log,
  })
  const publishMetrics = createMetricsPublisher({
    control,
    schema,
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
  let optOutTimer: NodeJS.Timeout | null = null
  let optOutTick: Promise<void> = Promise.resolve()
  let optOutBusy = false
  /** A tick of the opt-out sync, unless the last one still runs. */
  function optOutCheck(): void {
    if (optOutBusy) return
    optOutBusy = true
    optOutTick = optOuts
      .tick()
      .catch((err) => {
        // the next tick tries again: a failed sync leaves its version unsynced
        log.warn({ err }, 'bringing the index in line with the opt-outs failed')
      })
      .finally(() => {
        optOutBusy = false
      })
  }
  let closing: Promise<void> | null = null

  /** Takes over entries another consumer left pending too long (it died or hangs). */
  async function claim(): Promise<void> {
    let start = '0-0'
    for (let round = 0; round < 100 && running; round++) {
      const page = await group.claimPage(start)
      if (page.deleted.length > 0) {
        // XAUTOCLAIM has dropped them from the group: nobody will apply them.
        counters.lostEntries += page.deleted.length
        log.warn(
          { ids: page.deleted.slice(0, 20), count: page.deleted.length },
          'pending entries were deleted from the stream (trimmed?) before anyone applied them: lost',
        )
      }
      if (page.entries.length > 0) {
        counters.claimed += page.entries.length
        log.info({ count: page.entries.length }, 'reclaimed pending entries')
        await applyEntries(page.entries)
      }
      start = page.next
      if (start === '0-0') break
    }
  }

  async function run(): Promise<void> {
    // First this consumer's own pending entries (a restart under the same name), then new ones.
    let pendingOwn = true
    let nextClaim = 0
    // Up to IN_FLIGHT batches in flight: the next one is read and prepared while Redis works on the ones
    // before (the writer runs their phases in order). Each is acknowledged when its own writes are done.
    const inflight: Promise<void>[] = []
    // And the batch after them is read ahead: Redis sends a reply of ~10 MB 64 KB per turn of its event
    // loop, between chunks of the writes in hand, so a read made once the writes were sent took about a
    // second (BENCHMARKS.md), which this process spent idle. Entries read ahead are this consumer's pending ones:
    // applied next, or taken back by a restart or XAUTOCLAIM if the process dies first.
    let ahead: Promise<RawEntry[]> | null = null
    const drain = async () => {
      while (inflight.length > 0) await inflight.shift()
    }
    for (let attempt = 1; running; ) {
      try {
        // While Redis refuses work, read nothing more: the batches in hand retry until it takes them.
        if (faults.state() !== null) await drain()
        if (Date.now() >= nextClaim) {
          await drain()
          nextClaim = Date.now() + config.claimIntervalMs
          await claim()
        }
        if (pendingOwn) {
          await drain()
          const own = await group.read('0', false)
          if (own.length === 0) pendingOwn = false
          else await applyEntries(own)
          continue
        }
        const reading = ahead ?? group.read('>', true)
        ahead = null
        const entries = await reading
        attempt = 1
        if (entries.length === 0) {
          // Redis answered and there is nothing to write: whatever made a read fail is over.
          faults.succeeded()
          continue
        }
        if (running && faults.state() === null) {
          ahead = group.read('>', true)
          // awaited later; until then a failure must not count as unhandled
          ahead.catch(() => {})
        }
        const job = applyEntries(entries)
        // awaited in turn; one that fails while an older one is awaited must not count as unhandled
        job.catch(() => {})
        inflight.push(job)
        while (inflight.length >= IN_FLIGHT) await inflight.shift()
      } catch (err) {
        if (!running || err instanceof IndexerStopping) break
        // A read or claim failed (NOGROUP among them: the handler creates the group again).
        await faults.failed(err, attempt++, 'reading the stream').catch(() => {})
      }
    }
    for (const r of await Promise.allSettled(inflight.splice(0)))
      if (r.status === 'rejected') stoppedOnly(r.reason)
    const last = ahead ? await (ahead as Promise<RawEntry[]>).catch(() => []) : []
    if (last.length > 0) await applyEntries(last).catch(stoppedOnly)
  }

  return {
    counters: () => copyCounters(counters),
    backoff: () => faults.state(),

    async start() {
      if (running || closing) return
      await reads.connect()
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
      await group.ensure()
      await group.prune().catch((err) => log.warn({ err }, 'pruning idle consumers failed'))
      running = true
      loop = run()
      metricsTimer = setInterval(() => void publishMetrics(), config.metricsIntervalMs)
      metricsTimer.unref()
      optOutCheck()
      optOutTimer = setInterval(optOutCheck, config.optOutSyncMs)
      optOutTimer.unref()
      log.info(
        {
          consumer: me,
          stream: schema.eventStream,
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
        if (optOutTimer) clearInterval(optOutTimer)
        const errors: unknown[] = []
        // The loop notices `running` after the batch in hand (or after one BLOCK period).
        await loop?.catch((err) => errors.push(err))
        await optOutTick
        if (loop) await publishMetrics().catch((err) => errors.push(err))
        await writer.close().catch((err) => errors.push(err))
        for (const c of [reads, redis, control]) {
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

/** A batch given up because the service closes stays pending: not an error of close(). */
function stoppedOnly(err: unknown): void {
  if (!(err instanceof IndexerStopping)) throw err
}
