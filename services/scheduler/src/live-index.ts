import { createIndexReader } from '@circles/interaction-index'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { LiveHours } from './live-source.js'

/** The indexer's reader, seen as hours: enumerate, scan one, free one after its roll-up. */
export function createLiveHours(redis: Redis, schema: RedisSchema): LiveHours {
  const reader = createIndexReader(redis, schema)
  return {
    hours: () => reader.hours(),
    scanHour: (hour, onBatch) => reader.scanHour(hour, onBatch),
    freeHour: (hour) => reader.dropHour(hour),
  }
}
