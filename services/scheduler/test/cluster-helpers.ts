import { createSchema, type RedisSchema } from '@circles/redis-schema'
import { connectRedis, type RedisTarget, scanPrimaries } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { actualAggregates, sortedEntries } from './helpers.js'

// Helpers of the cluster tests that run the same work on one Redis and on a Redis Cluster and compare
// what each answered and left.

export interface Target {
  redis: Redis
  schema: RedisSchema
  /** The environment a service takes for it (REDIS_URL or REDIS_CLUSTER_NODES). */
  env: Record<string, string>
}

/** A client and the service environment of one Redis (`seeds` unset) or of a cluster. */
export function targetOf(target: RedisTarget, prefix: string, seeds?: string): Target {
  return {
    redis: connectRedis(target),
    schema: createSchema(prefix),
    env: seeds === undefined ? { REDIS_URL: target.redisUrl } : { REDIS_CLUSTER_NODES: seeds },
  }
}

/** Every key under `prefix` on every primary, without the prefix, sorted. */
export async function keysOf(redis: Redis, prefix: string): Promise<string[]> {
  const out: string[] = []
  for await (const { keys } of scanPrimaries(redis, `${prefix}*`)) {
    for (const k of keys) out.push(k.slice(prefix.length))
  }
  return [...new Set(out)].sort()
}

/** `dids`' long-term aggregates as stored (empty day blobs left out), sorted. */
export async function storedAggregatesOf(
  redis: Redis,
  schema: RedisSchema,
  dids: readonly string[],
): Promise<ReturnType<typeof sortedEntries>> {
  const actual = await actualAggregates(redis, schema, dids)
  for (const [k, m] of actual) if (m.size === 0) actual.delete(k)
  return sortedEntries(actual)
}

/** A copy without the run times (`ms`), which differ from run to run. */
export function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalise)
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => k !== 'ms')
      .map(([k, v]) => [k, normalise(v)]),
  )
}

/** JSON of a part, for a comparison whose failure shows the difference. */
export function dump(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null))
}
