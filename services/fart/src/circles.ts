import { randomBytes } from 'node:crypto'
import type { Profile, ProfileCache } from '@circles/bsky-client'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { IndexReader, LongWindowReader, Partner } from './index-source.js'
import { type CircleParams, type KindCounts, variantOf } from './params.js'

// Circles: computed from the index, cached in Redis as ready-to-send JSON, computed once per actor and
// parameter set at a time (single-flight). The original system kept a non-atomic "computing" flag that locked
// a user out forever after one error; here the lock is SET NX PX with a random token, released only by its
// owner, and it expires by itself, so a crashed computation delays waiters by at most `lockMs`.
//
// Cache entries are `<opt-out version>\n<status>\n<json>`. Every opt-out change bumps the version, so a
// circle made before someone opted out is never served again: they leave everyone's circles at once.

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

export type CircleResult =
  | { status: 200 | 404 | 501; body: string; cache: 'hit' | 'miss' | 'shared' }
  | { status: 403 | 404; body: string; cache: 'none' }

export interface CircleServiceDeps {
  redis: Redis
  schema: RedisSchema
  index: IndexReader
  longWindows?: LongWindowReader
  profiles: ProfileCache
  ttlSeconds: number
  partialTtlSeconds: number
  lockMs: number
  log: Logger
  now?: () => number
  /** Poll interval of requests waiting for another's computation. @default 15 */
  pollMs?: number
  /** Life of the in-process copy of served circles; 0 disables it. @default 0 */
  localMs?: number
}

export const OPTED_OUT_BODY = JSON.stringify({
  statusCode: 403,
  error: 'OptedOut',
  message: 'this account opted out: it has no circle and appears in no one else’s',
})

export const GONE_BODY = JSON.stringify({
  statusCode: 404,
  error: 'AccountUnavailable',
  message: 'this account is deleted, taken down or deactivated: it has no circle',
})

const RELEASE_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`

function errorBody(statusCode: number, error: string, message: string): string {
  return JSON.stringify({ statusCode, error, message })
}

function splitEntry(raw: string): { version: string; status: number; body: string } | null {
  const a = raw.indexOf('\n')
  const b = raw.indexOf('\n', a + 1)
  if (a < 0 || b < 0) return null
  return { version: raw.slice(0, a), status: Number(raw.slice(a + 1, b)), body: raw.slice(b + 1) }
}

function member(p: Partner, prof: Profile | undefined): CircleMember {
  const m: CircleMember = { did: p.did, score: p.score, sent: p.sent, received: p.received }
  if (prof) {
    m.handle = prof.handle
    if (prof.displayName) m.displayName = prof.displayName
    if (prof.avatar) m.avatar = prof.avatar
  }
  return m
}

export function createCircleService(deps: CircleServiceDeps) {
  const { redis, schema, index, profiles, log } = deps
  const now = deps.now ?? Date.now
  const pollMs = deps.pollMs ?? 15
  // In-process single-flight in front of the Redis one: concurrent requests in this process share a promise.
  const inflight = new Map<string, Promise<CircleResult>>()
  // A very short-lived copy of served circles in this process, so a hot circle costs no Redis round trip.
  // Its life (LOCAL_CACHE_MS, 1 s by default) bounds how late an opt-out or purge made elsewhere shows in
  // this process; the process that handled the opt-out clears it at once.
  const localMs = deps.localMs ?? 0
  const local = new Map<string, { status: 200; body: string; until: number }>()
  const remember = (key: string, status: number, body: string) => {
    if (localMs <= 0 || status !== 200) return
    if (local.size >= 10_000) local.delete(local.keys().next().value as string)
    local.set(key, { status: 200, body, until: now() + localMs })
  }

  async function compute(
    did: string,
    params: CircleParams,
  ): Promise<{ status: 200 | 404 | 501; body: string; ttl: number }> {
    const total = params.rings.reduce((a, b) => a + b, 0)
    const [optOuts] = await Promise.all([
      redis.smembers(schema.optOuts),
      // Record the request for the scheduler's snapshots (at most once per cache TTL per variant).
      redis.zadd(schema.circleRequests, now(), did),
    ])
    const exclude = new Set(optOuts)
    exclude.add(did)
    // Ask for a few more than needed: deleted or taken-down accounts found below are dropped.
    const limit = total + Math.min(25, Math.ceil(total / 4))
    let partners: Partner[]
    const { window } = params
    if (window.hours !== undefined) {
      partners = await index.topPartners({
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
      return { status: 501, body, ttl: deps.ttlSeconds }
    }
    partners = partners.filter((p) => !exclude.has(p.did))
    const lookup = await profiles.get([did, ...partners.map((p) => p.did)])
    if (lookup.missing.has(did)) return { status: 404, body: GONE_BODY, ttl: deps.ttlSeconds }
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
      generatedAt: new Date(now()).toISOString(),
    }
    return {
      status: 200,
      body: JSON.stringify(circle),
      ttl: lookup.complete ? deps.ttlSeconds : deps.partialTtlSeconds,
    }
  }

  async function viaLock(
    did: string,
    params: CircleParams,
    variant: string,
    version: string,
  ): Promise<CircleResult> {
    const cacheKey = schema.circle(did, variant)
    const lockKey = schema.circleLock(did, variant)
    const deadline = now() + deps.lockMs
    for (;;) {
      const token = randomBytes(8).toString('hex')
      const got = await redis.set(lockKey, token, 'PX', deps.lockMs, 'NX')
      if (got === 'OK') {
        try {
          const r = await compute(did, params)
          await redis.set(cacheKey, `${version}\n${r.status}\n${r.body}`, 'EX', r.ttl)
          return { status: r.status, body: r.body, cache: 'miss' }
        } finally {
          await redis.eval(RELEASE_LOCK, 1, lockKey, token).catch((err: unknown) => {
            log.warn({ err }, 'circle lock release failed (it expires by itself)')
          })
        }
      }
      // Someone else computes: wait for their entry, or for their lock to vanish (they failed) and retry.
      while (now() < deadline) {
        await new Promise((r) => setTimeout(r, pollMs))
        const [[, raw], [, locked]] = (await redis
          .pipeline()
          .get(cacheKey)
          .exists(lockKey)
          .exec()) as [[null, string | null], [null, number]]
        const e = raw === null ? null : splitEntry(raw)
        if (e && e.version === version) {
          return { status: e.status as 200, body: e.body, cache: 'shared' }
        }
        if (locked === 0) break
      }
      if (now() >= deadline) {
        // The holder is alive but slow beyond the lock's life: compute ourselves rather than wait longer.
        const r = await compute(did, params)
        return { status: r.status, body: r.body, cache: 'miss' }
      }
    }
  }

  return {
    /** Serves a circle: cache, else one computation shared by every concurrent request. */
    async get(did: string, params: CircleParams): Promise<CircleResult> {
      const variant = variantOf(params)
      const localKey = `${did}|${variant}`
      if (localMs > 0) {
        const l = local.get(localKey)
        if (l && l.until > now()) return { status: l.status, body: l.body, cache: 'hit' }
      }
      const [[, optedOut], [, purged], [, version], [, raw]] = (await redis
        .pipeline()
        .sismember(schema.optOuts, did)
        .exists(schema.accountPurged(did))
        .get(schema.optOutsVersion)
        .get(schema.circle(did, variant))
        .exec()) as [[null, number], [null, number], [null, string | null], [null, string | null]]
      if (optedOut === 1) return { status: 403, body: OPTED_OUT_BODY, cache: 'none' }
      // The indexer marks accounts it purged on a deleted/taken-down event: no circle, whatever the cache says.
      if (purged === 1) return { status: 404, body: GONE_BODY, cache: 'none' }
      const v = version ?? '0'
      if (raw !== null) {
        const e = splitEntry(raw)
        if (e && e.version === v) {
          remember(localKey, e.status, e.body)
          return { status: e.status as 200, body: e.body, cache: 'hit' }
        }
      }
      const key = `${did}|${variant}|${v}`
      let p = inflight.get(key)
      if (!p) {
        p = viaLock(did, params, variant, v).finally(() => inflight.delete(key))
        inflight.set(key, p)
      }
      const r = await p
      if (r.status === 200) remember(localKey, r.status, r.body)
      return r
    },
    /** Forgets this process's short-lived copies (after an opt-out change made here). */
    clearLocal() {
      local.clear()
    },
    /** The parsed circle (for drawing); same caching as `get`. */
    async getCircle(
      did: string,
      params: CircleParams,
    ): Promise<{ status: number; body: string; circle?: Circle; cache: string }> {
      const r = await this.get(did, params)
      return r.status === 200 ? { ...r, circle: JSON.parse(r.body) as Circle } : r
    },
  }
}

export type CircleService = ReturnType<typeof createCircleService>

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
