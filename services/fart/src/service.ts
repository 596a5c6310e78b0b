import { BACKFILL_QUEUE, type BackfillJobData, backfillQueueOptions } from '@circles/backfill'
import { createLogger, logConnectionErrors } from '@circles/logging'
import { createSchema, type RedisSchema } from '@circles/redis-schema'
import { connectRedis } from '@circles/redis-wire'
import { Queue } from 'bullmq'
import type { FastifyInstance } from 'fastify'
import type { Redis, RedisOptions } from 'ioredis'
import { buildApp } from './app.js'
import type { FartConfig } from './config.js'
import { createDurableLists, type DurableLists } from './durable-lists.js'
import type { LivePartners, LongPartners } from './index-source.js'
import { createIndex, createLongWindows } from './wiring.js'

export interface FartDeps {
  /** Builds the index reader on the service's Redis connection. @default wiring.ts `createIndex` */
  createIndex?: (redis: Redis, schema: RedisSchema) => LivePartners
  /** The 7/30/90-day windows; undefined answers them 501. @default wiring.ts `createLongWindows` */
  createLongWindows?: (redis: Redis, schema: RedisSchema) => LongPartners | undefined
  /** Mount the scheduler's queues at /admin/queues (only when ADMIN_TOKEN is set). @default true */
  queueView?: boolean
}

export interface FartService {
  /** Resolves with the URL it listens on: with PORT=0 that is where the chosen port shows. */
  start(): Promise<{ url: string }>
  close(): Promise<void>
}

/** The API's Redis connection: commands wait for a reconnection (two attempts), never longer than the timeout. */
export function apiRedisOptions(config: FartConfig): RedisOptions {
  return {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    commandTimeout: config.redisTimeoutMs,
  }
}

export function createFartService(config: FartConfig, deps: FartDeps = {}): FartService {
  const log = createLogger('fart')
  const schema = createSchema(config.redisPrefix)
  let redis: Redis | undefined
  let queueRedis: Redis | undefined
  let backfillQueue: Queue<BackfillJobData> | undefined
  let lists: DurableLists | undefined
  let app: FastifyInstance | undefined
  let closing: Promise<void> | undefined

  return {
    async start() {
      redis = connectRedis(config, apiRedisOptions(config))
      logConnectionErrors(redis, log)
      await redis.connect()
      if (config.listsFile) {
        lists = createDurableLists(redis, schema, config.listsFile, log)
        await lists.sync()
        lists.start(config.listsSyncMs)
      }
      // Backfills are enqueued by circle requests (BACKFILL_ON_REQUEST) and the admin routes.
      const backfills = config.backfillOnRequest || config.adminToken !== undefined
      if (backfills || (config.adminToken && deps.queueView !== false)) {
        // A producer-side connection: fail fast rather than queue commands while Redis is away.
        queueRedis = connectRedis(config, {
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
        })
        logConnectionErrors(queueRedis, log, 'Redis connection (job queues)')
      }
      if (backfills && queueRedis) {
        backfillQueue = new Queue<BackfillJobData>(BACKFILL_QUEUE, {
          connection: queueRedis,
          ...backfillQueueOptions(schema),
        })
        // Its errors are the connection's, which logConnectionErrors reports (else BullMQ prints each).
        backfillQueue.on('error', () => {})
      }
      app = await buildApp({
        config,
        redis,
        schema,
        index: (deps.createIndex ?? createIndex)(redis, schema),
        longWindows: (deps.createLongWindows ?? createLongWindows)(redis, schema),
        queueBoard:
          queueRedis && config.adminToken && deps.queueView !== false
            ? { connection: queueRedis }
            : undefined,
        backfillQueue,
        processMetrics: true,
      })
      const url = await app.listen({ host: config.host, port: config.port })
      log.info(
        {
          url,
          appview: config.appviewUrl,
          admin: config.adminToken ? 'enabled' : 'disabled',
          prefix: config.redisPrefix,
        },
        'fart API ready',
      )
      return { url }
    },
    close() {
      closing ??= (async () => {
        lists?.stop()
        // Every step runs even if one fails: stop accepting requests (the app closes the board's queues),
        // then drop Redis. A failure is logged and close() resolves: there is no loop of its own whose
        // failure the exit code should carry, as the firehose's and the indexer's close have.
        try {
          await app?.close()
        } catch (err) {
          log.error({ err }, 'closing the HTTP server failed')
        }
        try {
          await backfillQueue?.close()
        } catch (err) {
          log.error({ err }, 'closing the backfill queue failed')
        }
        queueRedis?.disconnect()
        try {
          await redis?.quit()
        } catch (err) {
          log.error({ err }, 'closing Redis failed')
          redis?.disconnect()
        }
        log.info('fart API stopped')
      })()
      return closing
    },
  }
}
