import { DidCache, type KindCounts, resolveIds } from '@circles/interaction-index'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import { emptyKindCounts, forEachPackedRecord, kindOfIndex } from './day-blob.js'

// Reading the long-term aggregates: day blobs summed by partner id over a range of days, then the ids
// resolved to DIDs through the index's DID table (which keeps an id while any day blob holds it).

/** Per-partner counts by kind, summed over day blobs; keyed by the id (8 latin1 characters) until resolved. */
export type PartnerCounts = Map<string, KindCounts>

/** Sums day blobs (`field -> blob` of one long-term hash) whose day is in [fromDay, toDay], by partner id. */
export function sumDayBlobs(
  fields: Record<string, Buffer>,
  fromDay: number,
  toDay: number,
  into: PartnerCounts = new Map(),
): PartnerCounts {
  for (const [field, blob] of Object.entries(fields)) {
    const day = Number(field)
    if (!Number.isInteger(day) || day < fromDay || day > toDay) continue
    forEachPackedRecord(blob, (r) => {
      const key = r.partner.toString('latin1')
      let counts = into.get(key)
      if (!counts) {
        counts = emptyKindCounts()
        into.set(key, counts)
      }
      counts[kindOfIndex(r.kind)] += r.count
    })
  }
  return into
}

/** Maps id-keyed counts to DID-keyed counts through the DID table; unknown ids are left out. */
export async function resolvePartners(
  redis: Redis,
  schema: RedisSchema,
  byId: PartnerCounts,
  cache: DidCache = new DidCache(100_000),
): Promise<PartnerCounts> {
  const dids = await resolveIds(redis, schema, [...byId.keys()], cache)
  const out: PartnerCounts = new Map()
  for (const [key, counts] of byId) {
    const did = dids.get(key)
    if (did !== undefined) out.set(did, counts)
  }
  return out
}

/** Partners (DIDs) of one long-term hash over the days [fromDay, toDay]. */
export async function readLongTerm(
  redis: Redis,
  schema: RedisSchema,
  key: string,
  fromDay: number,
  toDay: number,
): Promise<PartnerCounts> {
  const fields = await redis.hgetallBuffer(key)
  return resolvePartners(redis, schema, sumDayBlobs(fields, fromDay, toDay))
}
