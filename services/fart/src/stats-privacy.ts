import type { ProfileCache, ProfileLookup } from '@circles/bsky-client'
import { isValidDid } from '@circles/core'
import { hiddenAccounts } from '@circles/interaction-index'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import { withProfile } from './circle-compute.js'

interface RankedLike {
  did?: unknown
  handle?: string
  displayName?: string
  avatar?: string
}

/** Of each list, the entries whose profiles are worth asking the AppView for: what a page shows. */
const WARMED_PER_LIST = 20

/** Where the stats route takes profiles from (`statsProfiles`). */
export interface StatsProfiles {
  /** Cache only. */
  peek(dids: readonly string[]): Promise<ProfileLookup>
  /** Asks for profiles the cache lacks, in the background: no request waits for the AppView. */
  warm(dids: readonly string[]): void
}

/**
 * The scheduler's stats document as served: without the accounts that opted out or were deleted or taken
 * down, and with the profile fields (handle, displayName, avatar) of those left, so a page can name them.
 * The scheduler ranks every few minutes; an opt-out must leave the top lists within seconds, so they are
 * filtered again here (a list can then hold fewer than its limit until the next run). Profiles come from the
 * cache only: asking the AppView for a few hundred accounts on every request would make this route as slow
 * as its slowest batch. An account not cached is served with its DID alone, and asked for in the background.
 */
export async function statsForServing(
  redis: Redis,
  schema: RedisSchema,
  profiles: StatsProfiles,
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
  const unnamed = new Set<string>()
  for (const side of sides) {
    for (const [kind, list] of Object.entries(side)) {
      if (!Array.isArray(list)) continue
      side[kind] = list
        .filter((r) => !hidden.has(r?.did as string))
        .map((r, i) => {
          const did = r?.did as string
          const prof = lookup.profiles.get(did)
          if (!prof && i < WARMED_PER_LIST && isValidDid(did) && !lookup.missing.has(did))
            unnamed.add(did)
          return withProfile(r, prof)
        })
    }
  }
  if (unnamed.size > 0) profiles.warm([...unnamed].sort())
  return JSON.stringify(doc)
}

/**
 * The profile cache for the stats route. `peek` is remembered for `ttlMs` while it is asked for the same
 * accounts: the top lists change when the scheduler runs (every few minutes), and reading their few hundred
 * profiles again cost ~6 ms a request, half as much as the hidden-account check (which stays per request:
 * an opt-out must leave at once, a changed display name may wait). `warm` asks the AppView once per set of
 * accounts (so once per scheduler run, not per request), then forgets the remembered peek so the next
 * request names them.
 */
export function statsProfiles(
  profiles: Pick<ProfileCache, 'peek' | 'get'>,
  ttlMs: number,
  now: () => number,
  log?: Logger,
): StatsProfiles {
  let last: { key: string; at: number; lookup: Promise<ProfileLookup> } | undefined
  let warmed = ''
  return {
    peek(dids) {
      const key = dids.join(' ')
      const t = now()
      if (last && last.key === key && t - last.at < ttlMs) return last.lookup
      const lookup = profiles.peek(dids)
      const entry = { key, at: t, lookup }
      last = entry
      // A failed read is not remembered: the next request tries again.
      lookup.catch(() => {
        if (last === entry) last = undefined
      })
      return lookup
    },
    warm(dids) {
      const key = dids.join(' ')
      if (key === warmed) return
      warmed = key
      profiles.get(dids).then(
        () => {
          last = undefined
        },
        (err: Error) => log?.warn({ err }, 'fetching the top lists’ profiles failed'),
      )
    },
  }
}
