import type { Profile, ProfileCache } from '@circles/bsky-client'
import { errorBody, GONE_BYTES } from './circle-entry.js'
import type { LivePartners, LongPartners, Partner } from './index-source.js'
import type { CircleParams, KindCounts } from './params.js'

// One circle from the index and the profiles: partners ranked, deleted accounts dropped, cut into rings.
// No cache and no lock here (circles.ts has both).

export interface CircleMember {
  did: string
  handle?: string
  displayName?: string
  avatar?: string
  score: number
  sent: KindCounts
  received: KindCounts
}

export interface Circle {
  actor: { did: string; handle?: string; displayName?: string; avatar?: string }
  window: string
  direction: string
  weights: KindCounts
  ringSizes: number[]
  rings: { ring: number; members: CircleMember[] }[]
  /** False when the AppView could not be reached: members carry DIDs only; a retry soon fills them in. */
  profilesComplete: boolean
  generatedAt: string
}

export interface Computed {
  status: 200 | 404 | 501
  body: Buffer
  /** Cache time: shorter for a circle without its profiles, so they fill in soon. */
  ttl: number
}

export interface ComputeDeps {
  index: LivePartners
  longWindows?: LongPartners
  profiles: ProfileCache
  ttlSeconds: number
  partialTtlSeconds: number
  now: () => number
}

/** `out` with the profile's handle, and its display name and avatar where it has them. */
export function withProfile<T extends { handle?: string; displayName?: string; avatar?: string }>(
  out: T,
  prof: Profile | undefined,
): T {
  if (prof) {
    out.handle = prof.handle
    if (prof.displayName) out.displayName = prof.displayName
    if (prof.avatar) out.avatar = prof.avatar
  }
  return out
}

function member(p: Partner, prof: Profile | undefined): CircleMember {
  return withProfile<CircleMember>(
    { did: p.did, score: p.score, sent: p.sent, received: p.received },
    prof,
  )
}

/** `optOuts`: the opt-out set, read by the caller in a round trip it makes anyway. */
export async function computeCircle(
  deps: ComputeDeps,
  did: string,
  params: CircleParams,
  optOuts: readonly string[],
): Promise<Computed> {
  const total = params.rings.reduce((a, b) => a + b, 0)
  const exclude = new Set(optOuts)
  exclude.add(did)
  // Ask for a few more than needed: deleted or taken-down accounts found below are dropped.
  const limit = total + Math.min(25, Math.ceil(total / 4))
  let partners: Partner[]
  const { window } = params
  if (window.hours !== undefined) {
    partners = await deps.index.topPartners({
      did,
      direction: params.direction,
      windowHours: window.hours,
      weights: params.weights,
      limit,
      exclude,
    })
  } else if (deps.longWindows) {
    partners = await deps.longWindows.topPartners({
      did,
      direction: params.direction,
      days: window.days!,
      weights: params.weights,
      limit,
      exclude,
    })
  } else {
    const body = errorBody(
      501,
      'NotImplemented',
      `window ${window.text} needs the daily aggregates, which this deployment does not have yet; use 1h to 48h`,
    )
    return { status: 501, body: Buffer.from(body), ttl: deps.ttlSeconds }
  }
  partners = partners.filter((p) => !exclude.has(p.did))
  const lookup = await deps.profiles.get([did, ...partners.map((p) => p.did)])
  if (lookup.missing.has(did)) return { status: 404, body: GONE_BYTES, ttl: deps.ttlSeconds }
  // The AppView answered without these: deleted, taken down or deactivated, so not shown to anyone.
  const kept = partners.filter((p) => !lookup.missing.has(p.did)).slice(0, total)
  const rings: Circle['rings'] = []
  let at = 0
  params.rings.forEach((size, i) => {
    rings.push({
      ring: i + 1,
      members: kept.slice(at, at + size).map((p) => member(p, lookup.profiles.get(p.did))),
    })
    at += size
  })
  const self = lookup.profiles.get(did)
  const circle: Circle = {
    actor: self
      ? { did, handle: self.handle, displayName: self.displayName, avatar: self.avatar }
      : { did },
    window: window.text,
    direction: params.direction,
    weights: params.weights,
    ringSizes: params.rings,
    rings,
    profilesComplete: lookup.complete,
    generatedAt: new Date(deps.now()).toISOString(),
  }
  return {
    status: 200,
    body: Buffer.from(JSON.stringify(circle)),
    ttl: lookup.complete ? deps.ttlSeconds : deps.partialTtlSeconds,
  }
}

export function memberInitials(m: { handle?: string; displayName?: string; did: string }): string {
  // A display name gives its words' first letters; a handle its first two characters (p1.test -> P1).
  const words = (m.displayName ?? '').trim().split(/\s+/).filter(Boolean)
  const letters =
    words.length > 0
      ? words
          .slice(0, 2)
          .map((w) => [...w][0] ?? '')
          .join('')
      : [...(m.handle ?? '').split('.')[0]!].slice(0, 2).join('')
  return letters.toUpperCase() || '?'
}
