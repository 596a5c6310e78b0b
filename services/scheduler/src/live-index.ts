import { createIndexReader, HOUR_AUTHOR_SHARDS } from '@circles/interaction-index'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { LiveHours } from './live-source.js'

/** The indexer's reader, seen as hours: enumerate, scan one, free one after its roll-up. */
export function createLiveHours(redis: Redis, schema: RedisSchema): LiveHours {
  const reader = createIndexReader(redis, schema)
  return {
    hours: () => reader.hours(),
    scanHour: (hour, onBatch) => reader.scanHour(hour, onBatch),
    ids: {
      scanHour: (hour, onBatch) => reader.scanHourIds(hour, onBatch),
      resolve: (ids) => reader.resolveIds(ids),
    },
    // What reader.dropHour removes (the hour's author index, one key per shard, then its entry in the set
    // of hours), each behind the roll-up fence of its own slot. The shards live in different slots.
    freeHour: (hour, fence) =>
      fence.free([
        ...Array.from({ length: HOUR_AUTHOR_SHARDS }, (_, s) => ({
          key: schema.hourAuthors(hour, s),
        })),
        { key: schema.indexHours, member: String(hour) },
      ]),
  }
}
