import type { RedisSchema, ShardKeys } from '@circles/redis-schema'
import { luaSource } from '@circles/redis-wire'
import { fieldMap, parseGroups } from '@circles/stream-info'
import type { Redis } from 'ioredis'

const HEAL_GROUP_COUNTER = luaSource(import.meta.url, 'heal-group-counter')
const TRIM_READ = luaSource(import.meta.url, 'trim-read')

export interface LagReading {
  /** Entries the indexer group has not been delivered yet (conservative when not exact). */
  lag: number
  /** How `lag` was obtained: Redis's own `lag`, entries-added minus entries-read, or the whole length. */
  source: 'lag' | 'entries-read' | 'length' | 'no-group'
  /** XLEN of the stream. */
  length: number
  /** The group's last-delivered-id, when the group exists. */
  lastDeliveredId: string | null
  /** Entries delivered to the group and not yet acknowledged (null: no group). */
  pending: number | null
  /**
   * Entries removed from the stream before the group read them (MAXLEN trimming): entries-added minus
   * entries-read minus what the stream still holds. Exact while trimming takes the oldest first and the
   * stream holds no read entries; else a lower bound.
   */
  trimmedUnread: number
}

function num(value: unknown): number | null {
  if (value === null || value === undefined) return null
  const n = Number(value)
  return Number.isSafeInteger(n) ? n : null
}

/** Creates the indexer's group (at id 0, with the stream) when missing, so that its lag can be read. */
export async function ensureGroup(
  redis: Redis,
  schema: RedisSchema,
  shard: ShardKeys = schema.shard(0),
): Promise<boolean> {
  try {
    await redis.xgroup('CREATE', shard.stream, schema.indexerGroup, '0', 'MKSTREAM')
    return true
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('BUSYGROUP')) return false
    throw err
  }
}

/**
 * The indexer group's lag. Redis >= 7.0 reports it in XINFO GROUPS; it is null when Redis cannot know it
 * (e.g. after deletions inside the unread range): then entries-added minus entries-read, else the stream
 * length, which over-counts and so errs on the side of pausing.
 */
export async function readLag(
  redis: Redis,
  schema: RedisSchema,
  shard: ShardKeys = schema.shard(0),
): Promise<LagReading> {
  const replies = (await redis
    .pipeline()
    .xlen(shard.stream)
    .xinfo('GROUPS', shard.stream)
    .exec()) as [[Error | null, unknown], [Error | null, unknown]]
  const [[lenErr, len], [groupsErr, groups]] = replies
  if (lenErr) throw lenErr
  const length = num(len) ?? 0
  if (groupsErr) {
    // XINFO on a missing key errors; the stream is recreated by the next XADD.
    if (/no such key/i.test(groupsErr.message)) {
      return {
        lag: 0,
        source: 'no-group',
        length: 0,
        lastDeliveredId: null,
        pending: null,
        trimmedUnread: 0,
      }
    }
    throw groupsErr
  }
  const group = parseGroups(groups).find((g) => g.name === schema.indexerGroup)
  if (!group) {
    return {
      lag: length,
      source: 'no-group',
      length,
      lastDeliveredId: null,
      pending: null,
      trimmedUnread: 0,
    }
  }
  const { lastDeliveredId, pending, lag, entriesRead } = group
  // Logically unread entries the stream no longer holds were trimmed before the group read them.
  const trimmed = (lag: number) => Math.max(0, lag - length)
  if (lag !== null) {
    return { lag, source: 'lag', length, lastDeliveredId, pending, trimmedUnread: trimmed(lag) }
  }
  if (entriesRead !== null) {
    const info = fieldMap(await redis.xinfo('STREAM', shard.stream))
    const added = num(info.get('entries-added'))
    if (added !== null) {
      const unread = Math.max(0, added - entriesRead)
      return {
        lag: unread,
        source: 'entries-read',
        length,
        lastDeliveredId,
        pending,
        trimmedUnread: trimmed(unread),
      }
    }
  }
  return { lag: length, source: 'length', length, lastDeliveredId, pending, trimmedUnread: 0 }
}

/**
 * Sets the indexer group's entries-read counter right if Redis reports a lag although the group has been
 * delivered the whole stream: what a replica promoted by a failover does under Redis 7.0 (see
 * lua/heal-group-counter.lua), for good, which would keep the firehose paused. True when it did.
 */
export async function healGroupCounter(
  redis: Redis,
  schema: RedisSchema,
  shard: ShardKeys = schema.shard(0),
): Promise<boolean> {
  return (await redis.eval(HEAL_GROUP_COUNTER, 1, shard.stream, schema.indexerGroup)) === 1
}

/**
 * Trims entries the indexer group has read and acknowledged: everything below its oldest pending entry,
 * or up to its last-delivered id when nothing is pending. Exactly, not `~`: an applied entry is a copy of
 * events the index may since have purged (a deleted or opted-out account), and a quiet stream would keep up
 * to a node of them (100 entries) indefinitely. Once a lag check, so the cost is small. Where the bot's
 * group exists (services/bot), nothing it has not acknowledged is trimmed either: a bot that is down or
 * slow finds its mentions when it comes back (the stream's MAXLEN still bounds how many). Returns the
 * number of entries removed.
 */
export async function trimRead(
  redis: Redis,
  schema: RedisSchema,
  shard: ShardKeys = schema.shard(0),
): Promise<number> {
  // In one script (lua/trim-read.lua): groups read apart from the XTRIM, on a primary that then failed,
  // could trim entries its promoted replica had not delivered yet.
  return (await redis.eval(
    TRIM_READ,
    1,
    shard.stream,
    schema.indexerGroup,
    schema.botGroup,
  )) as number
}

/**
 * A shard's lag, its group's entries-read counter set right first where a failover left it wrong
 * (`healGroupCounter`; `onHealed` is told the wrong lag).
 */
export async function readHealedLag(
  redis: Redis,
  schema: RedisSchema,
  shard: ShardKeys,
  onHealed: (wrongLag: number) => void,
): Promise<LagReading> {
  const reading = await readLag(redis, schema, shard)
  if (reading.lag > 0 && (await healGroupCounter(redis, schema, shard))) {
    onHealed(reading.lag)
    return readLag(redis, schema, shard)
  }
  return reading
}

/**
 * Every shard's readings in one: `lag` is the highest (what backpressure and the MAXLEN guard, both per
 * stream, go by), the rest are sums. Pure.
 */
export function combineLags(readings: readonly LagReading[]): {
  lag: number
  total: number
  length: number
  trimmedUnread: number
} {
  let lag = 0
  let total = 0
  let length = 0
  let trimmedUnread = 0
  for (const r of readings) {
    lag = Math.max(lag, r.lag)
    total += r.lag
    length += r.length
    trimmedUnread += r.trimmedUnread
  }
  return { lag, total, length, trimmedUnread }
}
