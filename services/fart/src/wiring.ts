import { createIndexReader } from '@circles/interaction-index'
import { createLongWindowReader } from '@circles/long-term'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { LivePartners, LongPartners } from './index-source.js'

// Where the API meets packages/interaction-index: the live reader satisfies the API's contract as is; the
// long-window reader (live hours + the scheduler's daily aggregates) is adapted to it here.
export function createIndex(redis: Redis, schema: RedisSchema): LivePartners {
  return createIndexReader(redis, schema)
}

export function createLongWindows(redis: Redis, schema: RedisSchema): LongPartners {
  const long = createLongWindowReader(redis, schema)
  return { topPartners: (q) => long.topPartnersLong(q) }
}
