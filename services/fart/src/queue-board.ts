import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import { BACKFILL_QUEUE } from '@circles/backfill'
import { createLogger } from '@circles/logging'
import { JOB_KINDS, type RedisSchema } from '@circles/redis-schema'
import { Queue } from 'bullmq'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { requireRedis } from './redis-faults.js'

export interface QueueBoardOptions {
  /**
   * The queues' connection. The caller's: it is not closed here. Make it a producer's (fail fast, no
   * offline queue), as the service does.
   */
  connection: Redis
  /** Names the scheduler's queues (`schema.queues`, and the backfill queue) and their BullMQ prefix. */
  schema: RedisSchema
  /** @default '/admin/queues' */
  basePath?: string
  /** Hide retry/clean/remove buttons. @default false */
  readOnly?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The queues the board shows (producer side, no workers); closed with the app. */
    queueBoard: { queues: readonly Queue[] }
  }
}

/**
 * bull-board (an operator's view of the scheduler's queues: schedules, waiting, failed jobs with their
 * errors; and of the backfills, which the scheduler works too) under `basePath`. It makes one queue per job
 * kind and the backfill queue on the given connection and closes them when the app closes. Authentication is the caller's: register it inside a scope that checks the admin token.
 */
export const queueBoard = fp<QueueBoardOptions>(
  async (scope, opts) => {
    const log = createLogger('fart:queue-board')
    const { connection, schema } = opts
    const names = [...JOB_KINDS.map((kind) => schema.queues[kind]), BACKFILL_QUEUE]
    const queues = names.map((name) => {
      const queue = new Queue(name, { connection, prefix: schema.bullPrefix })
      // A queue's errors are its connection's, forwarded, and the connection's owner logs them
      // (logConnectionErrors); without a listener BullMQ would print each one to stderr, once per queue.
      queue.on('error', () => {})
      return queue
    })
    scope.decorate('queueBoard', { queues })
    scope.addHook('onClose', async () => {
      for (const q of queues) {
        await q.close().catch((err: unknown) => log.error({ err }, 'closing a queue failed'))
      }
    })
    // BullMQ waits for its connection to be ready before any command, so while the queues' Redis is away a
    // board request would hang rather than fail: 503 at once instead, as for the API's own connection.
    scope.addHook('onRequest', requireRedis(connection))

    const basePath = opts.basePath ?? '/admin/queues'
    const serverAdapter = new FastifyAdapter()
    serverAdapter.setBasePath(basePath)
    createBullBoard({
      queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: opts.readOnly ?? false })),
      serverAdapter,
      options: { uiConfig: { boardTitle: 'circles scheduler' } },
    })
    await scope.register(serverAdapter.registerPlugin(), { prefix: basePath })
  },
  { name: 'queue-board', fastify: '5.x' },
)
