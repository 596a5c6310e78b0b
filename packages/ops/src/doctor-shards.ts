import type { RedisSchema, ShardKeys } from '@circles/redis-schema'
import { parseGroups } from '@circles/stream-info'
import type { Redis } from 'ioredis'
import type { Check } from './doctor.js'

// The doctor's view of stream shards (FIREHOSE_SHARDS): each shard's stream, cursor, group and dead letters
// are checked like the one stream of old, their lines named by shard; and the streams of shards at or
// above the setting (left over after it was lowered) are looked at, since no indexer reads them any more.

/** Highest shard count the setting allows (packages/config): the streams that may have been left. */
const MAX_SHARDS = 64

/** Names a check by its shard, when there is more than one. */
export function perShard(shard: ShardKeys, shards: number) {
  function named(name: string): string
  function named(check: Check): Check
  function named(x: string | Check): string | Check {
    if (shards === 1) return x
    if (typeof x === 'string') return `${x} [shard ${shard.index}]`
    return { ...x, name: named(x.name) }
  }
  return named
}

/**
 * Streams of shards `shards`..63 that still hold entries the indexer group has not applied: FIREHOSE_SHARDS
 * was lowered before they drained, and no indexer reads them now. One EXISTS per possible shard.
 */
export async function checkRetiredShards(
  redis: Redis,
  schema: RedisSchema,
  shards: number,
): Promise<Check> {
  const retired: ShardKeys[] = []
  for (let k = shards; k < MAX_SHARDS; k++) retired.push(schema.shard(k))
  const exists = await Promise.all(retired.map((s) => redis.exists(s.stream)))
  const unread: string[] = []
  for (const [i, s] of retired.entries()) {
    if (exists[i] === 0) continue
    const length = await redis.xlen(s.stream)
    const group = parseGroups(await redis.xinfo('GROUPS', s.stream)).find(
      (g) => g.name === schema.indexerGroup,
    )
    const left = group ? (group.lag ?? length) + group.pending : length
    if (left > 0) unread.push(`${s.stream} (${left} not applied)`)
  }
  if (unread.length === 0) {
    return { name: 'retired stream shards', status: 'ok', message: `none beyond ${shards}` }
  }
  return {
    name: 'retired stream shards',
    status: 'warn',
    message: `FIREHOSE_SHARDS is ${shards} but ${unread.join(', ')}: it was lowered before these drained, and no indexer reads them now. Run the indexers with the old FIREHOSE_SHARDS until they are empty (the firehose can stay on the new one), then DEL them.`,
  }
}
