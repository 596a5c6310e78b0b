import type { RedisSchema } from '@circles/redis-schema'
import { pipelineFor } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import type { DidCache } from './did-cache.js'
import { didId, didTableBucket, packDidText, unpackDidText } from './layout.js'

// The DID table: 8-byte DID ids back to DIDs, in `DID_TABLE_BUCKETS` hashes (`schema.didTable`). The index
// writer and the scheduler's roll-up write it; whoever reads ids (the index's, the day blobs') resolves them
// through it.

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
  const pipe = pipelineFor(redis)
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

/**
 * The DID table entries (id -> DID) of `dids`, by bucket: field, value, field, value... `ids`, when the
 * caller has them (the i-th DID's 8-byte id at 8 * i), saves hashing each DID again.
 */
export function didTableEntries(
  dids: Iterable<string>,
  ids?: Buffer,
): Map<number, (string | Buffer)[]> {
  const buckets = new Map<number, (string | Buffer)[]>()
  let i = 0
  for (const did of dids) {
    const id = ids ? ids.subarray(8 * i, 8 * i + 8) : didId(did)
    i++
    const bucket = didTableBucket(id)
    let list = buckets.get(bucket)
    if (!list) {
      list = []
      buckets.set(bucket, list)
    }
    list.push(id, packDidText(did))
  }
  return buckets
}

/** Writes the DID table entries (id -> DID) of `dids`: one HSET per bucket, idempotent. */
export async function rememberDids(
  redis: Redis,
  schema: RedisSchema,
  dids: Iterable<string>,
): Promise<void> {
  let pipe = pipelineFor(redis)
  for (const [bucket, list] of didTableEntries(dids)) {
    pipe.hset(schema.didTable(bucket), ...list)
    if (pipe.length >= 1000) {
      for (const [err] of (await pipe.exec()) ?? []) if (err) throw err
      pipe = pipelineFor(redis)
    }
  }
  for (const [err] of (await pipe.exec()) ?? []) if (err) throw err
}
