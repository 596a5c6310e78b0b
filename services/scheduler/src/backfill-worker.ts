import {
  BACKFILL_QUEUE,
  type BackfillConfig,
  type BackfillJobData,
  backfillAccount,
  failureReason,
  PERMANENT_REASONS,
  type RepoDeps,
  repoOpener,
} from '@circles/backfill'
import { createIndexWriter } from '@circles/interaction-index'
import { createLogger, logConnectionErrors } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import { connectRedis, type RedisTarget } from '@circles/redis-wire'
import { RateLimitedError } from '@circles/repo-source'
import { DelayedError, type Job, UnrecoverableError, Worker } from 'bullmq'
import type { BullConnections } from './bull-connection.js'

// The `backfill` queue's worker, in the scheduler (the process that runs the system's BullMQ work). One
// job = one account (packages/backfill, account.ts). A failure a retry cannot change (a refused repo, an
// account that opted out) fails the job at once; a rate limit waits for the time the PDS named; anything
// else is retried with the job's backoff.

export interface BackfillWorker {
  close(): Promise<void>
}

export interface BackfillWorkerOptions {
  target: RedisTarget
  bull: BullConnections
  schema: RedisSchema
  config: BackfillConfig
  retentionDays: number
  now?: () => number
}

export async function startBackfillWorker(o: BackfillWorkerOptions): Promise<BackfillWorker> {
  const log = createLogger('scheduler:backfill')
  // Its own connection: a large fold's pipelines do not queue the scheduler's job commands behind them.
  const redis = connectRedis(o.target, { maxRetriesPerRequest: 3 })
  logConnectionErrors(redis, log, 'Redis connection (backfill)')
  const writer = createIndexWriter(redis, o.schema, {
    now: o.now,
    rollupGraceHours: o.config.rollupGraceHours,
  })
  const deps: RepoDeps = {
    redis,
    schema: o.schema,
    writer,
    now: o.now,
    retentionDays: o.retentionDays,
    open: repoOpener(o.config.source),
  }

  async function processJob(job: Job<BackfillJobData>, token?: string): Promise<unknown> {
    const { did } = job.data
    try {
      const out = await backfillAccount(deps, did, {
        partners: o.config.partners,
        concurrency: o.config.partnerConcurrency,
        onProgress: (done, total) => job.updateProgress({ done, total }),
      })
      log.info({ did, own: out.own.status, partners: out.partners }, 'account backfilled')
      return { own: out.own.status, partners: out.partners }
    } catch (err) {
      const reason = failureReason(err)
      // An account hidden meanwhile: the job ends as done (and is removed) rather than kept as a failed
      // job whose data names it.
      if (reason === 'hidden') return { hidden: true }
      log.warn({ err, did, reason }, 'account backfill failed')
      if (err instanceof RateLimitedError && err.retryAt !== undefined && token !== undefined) {
        await job.moveToDelayed(err.retryAt, token)
        throw new DelayedError()
      }
      if (PERMANENT_REASONS.has(reason))
        throw new UnrecoverableError(`${reason}: ${(err as Error).message}`)
      throw err
    }
  }

  const worker = new Worker<BackfillJobData>(BACKFILL_QUEUE, processJob, {
    connection: o.bull.connection({ maxRetriesPerRequest: null }),
    prefix: o.schema.bullPrefix,
    concurrency: o.config.concurrency,
    // Equal, as BullMQ's defaults are: a dead worker's job is found within one check of its lock lapsing.
    lockDuration: o.config.lockMs,
    stalledInterval: o.config.lockMs,
  })
  worker.on('error', (err) => log.error({ err }, 'backfill worker error'))
  await worker.waitUntilReady()
  log.info(
    { concurrency: o.config.concurrency, partners: o.config.partners },
    'backfill worker ready',
  )
  return {
    async close() {
      await worker.close()
      await writer.close()
      if (redis.status === 'ready') await redis.quit()
      else redis.disconnect()
    },
  }
}
