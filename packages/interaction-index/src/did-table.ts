import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { DidCache } from './did-cache.js'
import { didTableBucket, unpackDidText } from './layout.js'

/**
 * DIDs of 8-byte ids (given as latin1 strings), from the cache or else in one pipelined round trip to the
 * DID table. Ids missing from the table (a collision-free SHA-1 prefix cannot be inverted) are left out.
 */
export async function resolveIds(
  redis: Redis,
  schema: RedisSchema,
  keys: readonly string[],
  cache: DidCache,
): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const missing = new Map<number, string[]>()
  for (const key of keys) {
    if (out.has(key)) continue
    const did = cache.didOf(key)
    if (did !== undefined) {
      out.set(key, did)
      continue
    }
    const bucket = didTableBucket(Buffer.from(key, 'latin1'))
    let list = missing.get(bucket)
    if (!list) {
      list = []
      missing.set(bucket, list)
    }
    if (!list.includes(key)) list.push(key)
  }
  if (missing.size === 0) return out
  const pipe = redis.pipeline()
  const buckets = [...missing.entries()]
  for (const [bucket, list] of buckets) {
    pipe.hmget(schema.didTable(bucket), ...list.map((k) => Buffer.from(k, 'latin1')))
  }
  const results = (await pipe.exec()) ?? []
  buckets.forEach(([, list], i) => {
    const [err, values] = results[i] ?? []
    if (err) throw err
    ;(values as (string | null)[]).forEach((v, j) => {
      const key = list[j] as string
      if (v !== null) {
        const did = unpackDidText(v)
        out.set(key, did)
        cache.remember(key, did)
      }
    })
  })
  return out
}
