import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import type { Queue } from 'bullmq'
import type { FastifyInstance } from 'fastify'

export interface QueueBoardOptions {
  /** The scheduler's queues, e.g. from `createSchedulerQueues()`. */
  queues: readonly Queue[]
  /** @default '/admin/queues' */
  basePath?: string
  /** Hide retry/clean/remove buttons. @default false */
  readOnly?: boolean
}

/**
 * Mounts bull-board (an operator's view of the queues: schedules, waiting, failed jobs with their errors)
 * under `basePath`. Authentication is the caller's: register it inside a scope that checks the admin token.
 */
export async function registerQueueBoard(
  fastify: FastifyInstance,
  opts: QueueBoardOptions,
): Promise<void> {
  const basePath = opts.basePath ?? '/admin/queues'
  const serverAdapter = new FastifyAdapter()
  serverAdapter.setBasePath(basePath)
  createBullBoard({
    queues: opts.queues.map((q) => new BullMQAdapter(q, { readOnlyMode: opts.readOnly ?? false })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'circles scheduler' } },
  })
  await fastify.register(serverAdapter.registerPlugin(), { prefix: basePath })
}
