import { isValidDid } from '@circles/core'
import { hiddenAccounts } from '@circles/interaction-index'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'

interface RankedLike {
  did?: unknown
}

/**
 * The scheduler's stats document without the accounts that opted out or were deleted or taken down. The
 * scheduler ranks every few minutes; an opt-out must leave the top lists within seconds, so they are
 * filtered again at serve time (a list can then hold fewer than its limit until the next run).
 */
export async function hideFromStats(
  redis: Redis,
  schema: RedisSchema,
  raw: string,
): Promise<string> {
  let doc: { top?: Record<string, Record<string, RankedLike[]>> }
  try {
    doc = JSON.parse(raw)
  } catch {
    return raw
  }
  const sides = ['authors', 'subjects']
    .map((s) => doc.top?.[s])
    .filter((s) => s && typeof s === 'object')
  const lists = sides
    .flatMap((side) => Object.values(side as object))
    .filter(Array.isArray) as RankedLike[][]
  const dids = [...new Set(lists.flat().map((r) => r?.did))].filter(
    (d): d is string => typeof d === 'string' && isValidDid(d),
  )
  if (dids.length === 0) return raw
  const hidden = await hiddenAccounts(redis, schema, dids, { queued: false })
  if (hidden.size === 0) return raw
  for (const side of sides as Record<string, RankedLike[]>[]) {
    for (const [kind, list] of Object.entries(side)) {
      if (Array.isArray(list)) side[kind] = list.filter((r) => !hidden.has(r?.did as string))
    }
  }
  return JSON.stringify(doc)
}
