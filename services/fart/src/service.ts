import { createLogger, logConnectionErrors } from '@circles/logging'
import { createSchema } from '@circles/redis-schema'
import { createSchedulerQueues, registerQueueBoard } from '@circles/scheduler'
import type { Queue } from 'bullmq'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { Redis, type RedisOptions } from 'ioredis'
import { buildApp } from './app.js'
import type { FartConfig } from './config.js'
import { createDurableLists, type DurableLists } from './durable-lists.js'
import type { IndexReader, LongWindowReader } from './index-source.js'
import { requireRedis } from './redis-faults.js'

/** bull-board over the scheduler's queues at /admin/queues (the admin scope supplies authentication). */
export function queueViewPlugin(queues: readonly Queue[]): FastifyPluginAsync {
  // BullMQ waits for its connection to be ready before any command, so while the queues' Redis is away a
  // board request would hang rather than fail: 503 at once instead, as for the API's own connection.
  const connections = queues
    .map((q) => q.opts.connection as Partial<Pick<Redis, 'status'>>)
    .filter((c): c is Pick<Redis, 'status'> => typeof c.status === 'string')
  return async (scope) => {
    scope.addHook('onRequest', requireRedis(...connections))
    await registerQueueBoard(scope, { queues, basePath: '/admin/queues' })
  }
}

export interface FartServiceDeps {
  /** Builds the index reader on the service's Redis connection. */
  createIndex: (redis: Redis, schema: ReturnType<typeof createSchema>) => IndexReader
  createLongWindows?: (
    redis: Redis,
    schema: ReturnType<typeof createSchema>,
  ) => LongWindowReader | undefined
  /** Mount the scheduler's queues at /admin/queues (only when ADMIN_TOKEN is set). @default true */
  queueView?: boolean
}

export interface FartService {
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

export function createFartService(config: FartConfig, deps: FartServiceDeps): FartService {
  const log = createLogger('fart')
  const schema = createSchema(config.redisPrefix)
  let redis: Redis | undefined
  let queueRedis: Redis | undefined
  let queues: Queue[] = []
  let lists: DurableLists | undefined
  let app: FastifyInstance | undefined
  let closing: Promise<void> | undefined

  return {
    async start() {
      redis = new Redis(config.redisUrl, apiRedisOptions(config))
      logConnectionErrors(redis, log)
      await redis.connect()
      if (config.listsFile) {
        lists = createDurableLists(redis, schema, config.listsFile, log)
        await lists.sync()
        lists.start(config.listsSyncMs)
      }
      let queueView: FastifyPluginAsync | undefined
      if (config.adminToken && deps.queueView !== false) {
        // A producer-side connection: fail fast rather than queue commands while Redis is away.
        queueRedis = new Redis(config.redisUrl, {
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
        })
        logConnectionErrors(queueRedis, log, 'Redis connection (job queues)')
        queues = Object.values(createSchedulerQueues(queueRedis, schema))
        queueView = queueViewPlugin(queues)
      }
      app = await buildApp({
        config,
        redis,
        schema,
        index: deps.createIndex(redis, schema),
        longWindows: deps.createLongWindows?.(redis, schema),
        queueView,
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
        // Every step runs even if one fails: stop accepting requests, then drop Redis.
        try {
          await app?.close()
        } catch (err) {
          log.error({ err }, 'closing the HTTP server failed')
        }
        for (const q of queues) {
          await q.close().catch((err: unknown) => log.error({ err }, 'closing a queue failed'))
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
