import type { ProfileCache } from '@circles/bsky-client'
import { isValidDid } from '@circles/core'
import { hiddenAccounts } from '@circles/interaction-index'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import { withProfile } from './circle-compute.js'

interface RankedLike {
  did?: unknown
  handle?: string
  displayName?: string
  avatar?: string
}

/**
 * The scheduler's stats document as served: without the accounts that opted out or were deleted or taken
 * down, and with the profile fields (handle, displayName, avatar) of those left, so a page can name them.
 * The scheduler ranks every few minutes; an opt-out must leave the top lists within seconds, so they are
 * filtered again here (a list can then hold fewer than its limit until the next run). Profiles come from the
 * cache only (`peek`): asking the AppView for a few hundred accounts on every request would make this
 * route as slow as its slowest batch; an account not cached is served with its DID alone.
 */
export async function statsForServing(
  redis: Redis,
  schema: RedisSchema,
  profiles: Pick<ProfileCache, 'peek'>,
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
    .filter((s): s is Record<string, RankedLike[]> => !!s && typeof s === 'object')
  const lists = sides.flatMap((side) => Object.values(side)).filter(Array.isArray)
  const dids = [...new Set(lists.flat().map((r) => r?.did))].filter(
    (d): d is string => typeof d === 'string' && isValidDid(d),
  )
  if (dids.length === 0) return raw
  // Both reads at once: a hidden account's profile is read for nothing, which is rare and costs one GET.
  const [hidden, lookup] = await Promise.all([
    hiddenAccounts(redis, schema, dids, { queued: false }),
    profiles.peek(dids),
  ])
  for (const side of sides) {
    for (const [kind, list] of Object.entries(side)) {
      if (!Array.isArray(list)) continue
      side[kind] = list
        .filter((r) => !hidden.has(r?.did as string))
        .map((r) => withProfile(r, lookup.profiles.get(r?.did as string)))
    }
  }
  return JSON.stringify(doc)
}
