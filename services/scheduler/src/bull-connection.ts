import { connectRedis, type RedisTarget, redisOptions } from '@circles/redis-wire'
import type { ConnectionOptions } from 'bullmq'
import type { Redis, RedisOptions } from 'ioredis'

/**
 * Connections for BullMQ queues and workers. For one Redis, options: each queue and worker then owns (and
 * closes) its own connections, and nothing is left pending on a client closed under it. BullMQ makes no
 * cluster client from options, so for a cluster each gets a cluster client of its own (a worker duplicates
 * it for its blocking reads), closed by `close()` after the queues and workers. Its keys share one slot
 * (`schema.bullPrefix` is hash-tagged), as BullMQ's scripts need on a cluster.
 */
export interface BullConnections {
  connection(options: RedisOptions): ConnectionOptions
  close(): void
}

export function bullConnections(target: RedisTarget): BullConnections {
  const made: Redis[] = []
  return {
    connection(options) {
      if (!target.redisClusterNodes) return { ...redisOptions(target.redisUrl), ...options }
      const client = connectRedis(target, options)
      made.push(client)
      return client
    },
    close() {
      for (const client of made.splice(0)) client.disconnect()
    },
  }
}
