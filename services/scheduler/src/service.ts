import { createLogger, logConnectionErrors } from '@circles/logging'
import { type MetricsServer, startMetricsServer } from '@circles/metrics'
import { createSchema, JOB_KINDS, type JobKind, type RedisSchema } from '@circles/redis-schema'
import { connectRedis, type RedisTarget } from '@circles/redis-wire'
import { type ConnectionOptions, type Job, type JobsOptions, Queue, Worker } from 'bullmq'
import type { Redis } from 'ioredis'
import { type BackfillWorker, startBackfillWorker } from './backfill-worker.js'
import { bullConnections } from './bull-connection.js'
import type { SchedulerConfig } from './config.js'
import { createFence, createRollupFence, FencedOutError } from './fence.js'
import { createLiveHours } from './live-index.js'
import type { LiveHours } from './live-source.js'
import { acquireLock, type Lock, LockLostError } from './lock.js'
import { createSchedulerRegistry } from './prometheus.js'
import { runPrune } from './prune.js'
import { runRollup } from './rollup.js'
import { runSnapshots } from './snapshots.js'
import { runGlobalStats, StatsCache } from './stats.js'
import { bucketsPerRun } from './table-sweep.js'

export interface SchedulerDeps {
  /**
   * The live index, hour by hour; the service does not close it. @default the indexer's reader, adapted
   * (`createLiveHours`), on a connection of the service's own
   */
  live?: LiveHours
  /** @default Date.now */
  now?: () => number
  /** Expiry of a job's lock; the job extends it every twelfth of this. Tests shorten it. @default 60000 */
  lockTtlMs?: number
}

export interface SchedulerService {
  start(): Promise<void>
  close(): Promise<void>
  /** One queue per job kind (available after start), e.g. to read its schedules and job counts. */
  readonly queues: Readonly<Record<JobKind, Queue>>
  /** Runs one job kind now, in this process, under its lock (tests, operators). null when it was busy. */
  runNow(kind: JobKind): Promise<unknown>
}

/**
 * One queue per job kind under the schema's BullMQ prefix, without workers: the service's producers, and a
 * test's view of the schedules. (The API's queue board makes its own: services/fart/src/queue-board.ts.)
 */
export function createSchedulerQueues(
  connection: ConnectionOptions,
  schema: RedisSchema,
): Record<JobKind, Queue> {
  const out = {} as Record<JobKind, Queue>
  for (const kind of JOB_KINDS) {
    out[kind] = new Queue(schema.queues[kind], { connection, prefix: schema.bullPrefix })
  }
  return out
}

/**
 * The live index on a connection of its own: roll-up scans and job commands do not queue behind each
 * other.
 */
function ownLiveHours(
  target: RedisTarget,
  schema: RedisSchema,
): { live: LiveHours; close(): void } {
  const redis = connectRedis(target, { maxRetriesPerRequest: 3 })
  logConnectionErrors(redis, createLogger('scheduler:index'), 'Redis connection (index reads)')
  return { live: createLiveHours(redis, schema), close: () => redis.disconnect() }
}

async function disconnect(c: Redis): Promise<void> {
  if (c.status === 'ready') await c.quit()
  else c.disconnect()
}

/** A finished job's run time, from BullMQ's own stamps (null when one is missing). */
function jobSeconds(job: Job): number | null {
  return job.processedOn && job.finishedOn ? (job.finishedOn - job.processedOn) / 1000 : null
}

function everyMs(config: SchedulerConfig, kind: JobKind): number {
  switch (kind) {
    case 'rollup':
      return config.rollupEveryMs
    case 'prune':
      return config.pruneEveryMs
    case 'stats':
      return config.statsEveryMs
    case 'snapshots':
      return config.snapshotEveryMs
  }
}

export function createSchedulerService(
  config: SchedulerConfig,
  deps: SchedulerDeps = {},
): SchedulerService {
  const log = createLogger('scheduler')
  const schema = createSchema(config.redisPrefix)
  const { live, close: closeLive } = deps.live
    ? { live: deps.live, close: () => {} }
    : ownLiveHours(config, schema)
  const now = deps.now ?? Date.now
  const lockTtlMs = deps.lockTtlMs ?? 60_000
  // Jobs and locks: commands may wait for a reconnect. Queues fail fast (producers); workers must use
  // maxRetriesPerRequest: null (BullMQ blocks on this connection and handles reconnects itself).
  const redis = connectRedis(config, { lazyConnect: true, maxRetriesPerRequest: 3 })
  logConnectionErrors(redis, log)
  const bull = bullConnections(config)
  const queues = {} as Record<JobKind, Queue>
  const workers: Worker[] = []
  let backfill: BackfillWorker | undefined
  // Completed hours' stats contributions, kept between runs so a run scans only the newest hours.
  const statsCache = new StatsCache()
  let heartbeat: NodeJS.Timeout | undefined
  let closing: Promise<void> | undefined
  let prometheus: MetricsServer | undefined
  const prom = createSchedulerRegistry({
    redis,
    schema,
    live,
    liveWindowHours: config.liveWindowHours,
    queues,
    now,
  })

  const jobOptions: JobsOptions = {
    attempts: config.attempts,
    backoff: { type: 'exponential', delay: config.backoffMs },
    removeOnComplete: { count: 100 },
    removeOnFail: { count: config.keepFailed },
  }

  async function run(kind: JobKind, lock: Lock): Promise<unknown> {
    // Long jobs push their lock's expiry out as they go (at most every 5 s with the default expiry).
    let lastExtend = Date.now()
    const tick = async () => {
      if (Date.now() - lastExtend > lockTtlMs / 12) {
        lastExtend = Date.now()
        await lock.extend()
      }
    }
    const t = now()
    switch (kind) {
      case 'rollup': {
        const r = await runRollup(redis, schema, live, {
          fence: createRollupFence(redis, schema, lock.fence as number),
          now: t,
          liveWindowHours: config.liveWindowHours,
          retentionDays: config.retentionDays,
          beforeHour: async () => {
            lastExtend = Date.now()
            await lock.extend()
          },
          onProgress: tick,
        })
        return {
          forgot: r.forgot,
          cursor: r.cursor,
          freed: r.freed,
          rolled: r.rolled.map((h) => ({ hour: h.hour, rows: h.rows, records: h.records })),
        }
      }
      case 'prune':
        return runPrune(redis, schema, {
          now: t,
          retentionDays: config.retentionDays,
          snapshotRetentionDays: config.snapshotRetentionDays,
          onPage: tick,
          tableSweep: {
            fence: createFence(redis, schema.pruneFence, lock.fence as number),
            buckets: bucketsPerRun(config.pruneEveryMs, config.didTableSweepHours),
            onProgress: tick,
          },
        })
      case 'stats': {
        const doc = await runGlobalStats(redis, schema, live, {
          now: t,
          cache: statsCache,
          onProgress: tick,
          streamShards: config.firehoseShards,
        })
        return { generatedAt: doc.generatedAt, skippedRows: doc.skippedRows }
      }
      case 'snapshots':
        return runSnapshots(redis, schema, {
          now: t,
          retentionDays: config.snapshotRetentionDays,
        })
    }
  }

  /**
   * Runs a kind under its cross-process lock; a run that finds it held is skipped (the holder does the work).
   * A run that loses its lock on the way stops: at the next extension (LockLostError) or, for the roll-up,
   * at the next write, which its fence refuses (FencedOutError). It ends without an error, since retrying
   * would only find the lock busy: the new holder does the rest.
   */
  async function runLocked(kind: JobKind): Promise<unknown> {
    const key = schema.schedulerLock(kind)
    // The roll-up's and the prune's writes are fenced (fence.ts): their locks hand out numbers.
    const fenced =
      kind === 'rollup' || kind === 'prune' ? schema.schedulerFenceCounter(kind) : undefined
    const lock = await acquireLock(redis, key, lockTtlMs, fenced)
    if (!lock) {
      log.info({ job: kind }, 'job skipped: another run holds the lock')
      return null
    }
    const started = Date.now()
    try {
      const result = await run(kind, lock)
      log.info({ job: kind, ms: Date.now() - started, result }, 'job done')
      return result
    } catch (err) {
      if (!(err instanceof FencedOutError || err instanceof LockLostError)) throw err
      log.warn(
        { err, job: kind, fence: lock.fence, ms: Date.now() - started },
        'job stopped: it lost its lock, and the next holder does the rest',
      )
      return { lockLost: err.name }
    } finally {
      await lock.release().catch((err) => log.warn({ err, job: kind }, 'lock release failed'))
    }
  }

  /** Every job's schedule; idempotent: the scheduler id is the kind, so this updates the one in place. */
  async function schedule(): Promise<void> {
    for (const kind of JOB_KINDS) {
      await queues[kind]?.upsertJobScheduler(
        kind,
        { every: everyMs(config, kind) },
        { name: kind, data: {}, opts: jobOptions },
      )
    }
  }

  let beats = 0
  async function beat(): Promise<void> {
    const ttl = config.heartbeatMs * 3
    const before = await redis.set(schema.schedulerHeartbeat, String(Date.now()), 'PX', ttl, 'GET')
    // The heartbeat gone while this process beats: Redis lost its data (an empty restart, FLUSHALL), and the
    // job schedules with it. Nothing would run again until a restart: put them back.
    if (before === null && beats++ > 0) {
      log.error(
        'the heartbeat and the job schedules are gone (Redis lost its data?): scheduling again',
      )
      await schedule()
    }
  }

  return {
    queues,
    runNow: runLocked,
    async start() {
      await redis.connect()
      // Schedules first, workers after: a worker may start a job at once, and the logs read in order.
      Object.assign(
        queues,
        createSchedulerQueues(bull.connection({ enableOfflineQueue: false }), schema),
      )
      await schedule()
      for (const kind of JOB_KINDS) {
        const worker = new Worker(schema.queues[kind], async () => runLocked(kind), {
          connection: bull.connection({ maxRetriesPerRequest: null }),
          prefix: schema.bullPrefix,
          concurrency: 1,
        })
        worker.on('completed', (job) => prom.jobDone(kind, jobSeconds(job), false))
        worker.on('failed', (job, err) => {
          prom.jobDone(kind, job ? jobSeconds(job) : null, true)
          log.error({ err, job: kind, attempts: job?.attemptsMade }, 'job failed')
        })
        worker.on('error', (err) => log.error({ err, job: kind }, 'worker error'))
        workers.push(worker)
      }
      // Connected before start() returns: a close() racing the workers' first commands on connections still
      // starting left BullMQ's own commands rejected with nobody to catch them ("Connection is closed",
      // seen in the service test on a loaded machine).
      await Promise.all(workers.map((w) => w.waitUntilReady()))
      if (config.backfill.enabled) {
        backfill = await startBackfillWorker({
          target: config,
          bull,
          schema,
          config: config.backfill,
          retentionDays: config.retentionDays,
          now: deps.now,
        })
      }
      await beat()
      heartbeat = setInterval(() => {
        beat().catch((err) => log.warn({ err }, 'heartbeat failed'))
      }, config.heartbeatMs)
      heartbeat.unref()
      prometheus = await startMetricsServer({
        registry: prom.registry,
        port: config.metricsPort,
        host: config.metricsHost,
        log,
        extra: prom.queueMetrics,
      })
      log.info(
        {
          queues: JOB_KINDS.map((k) => schema.queues[k]),
          prefix: schema.bullPrefix,
          liveWindowHours: config.liveWindowHours,
          retentionDays: config.retentionDays,
        },
        'scheduler ready',
      )
    },
    close() {
      // A failed step is logged and close() resolves: unlike the firehose's and the indexer's, this close
      // awaits no loop of its own whose failure the exit code should carry (a job's failure is BullMQ's).
      closing ??= (async () => {
        if (heartbeat) clearInterval(heartbeat)
        const steps: (() => Promise<unknown>)[] = [
          // Workers first: close() waits for a running job to finish, so no roll-up stops half-way.
          ...workers.map((w) => () => w.close()),
          async () => backfill?.close(),
          async () => prometheus?.close(),
          ...Object.values(queues).map((q) => () => q.close()),
          async () => bull.close(),
          () => redis.del(schema.schedulerHeartbeat),
          () => disconnect(redis),
          async () => closeLive(),
        ]
        for (const step of steps) {
          await step().catch((err) => log.warn({ err }, 'close step failed'))
        }
        log.info('scheduler stopped')
      })()
      return closing
    },
  }
}
