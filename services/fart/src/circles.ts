import { createHash, randomBytes } from 'node:crypto'
import type { Profile, ProfileCache } from '@circles/bsky-client'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { IndexReader, LongWindowReader, Partner } from './index-source.js'
import { createLocalCache, type LocalEntry } from './local-cache.js'
import type { Notifier } from './notify.js'
import { type CircleParams, type KindCounts, variantOf } from './params.js'

// Circles: computed from the index, cached in Redis as ready-to-send JSON, computed once per actor and
// parameter set at a time (single-flight). The original system kept a non-atomic "computing" flag that locked
// a user out forever after one error; here the lock is SET NX PX with a random token, released only by its
// owner, and it expires by itself, so a crashed computation delays waiters by at most `lockMs`.
//
// Cache entries are `<opt-out version>\n<status>\n<etag>\n<json>`. Every opt-out change bumps the version, so
// a circle made before someone opted out is never served again: they leave everyone's circles at once. The
// ETag is the body's digest, made once with the body, so a conditional request costs no hashing.

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

/** A body ready to send (bytes, so the hot path neither encodes nor decodes it) and its ETag. */
export type CircleResult =
  | { status: 200 | 404 | 501; body: Buffer; etag: string; cache: 'hit' | 'miss' | 'shared' }
  | { status: 403 | 404; body: Buffer; etag?: undefined; cache: 'none' }

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
  /** Wakes requests waiting for another process's computation; without it they poll every `pollMs`. */
  notifier?: Notifier
  now?: () => number
  /**
   * Poll interval of requests waiting for another's computation: with a notifier only a fallback for a lost
   * notification or a holder that died. @default 15 without a notifier, 250 with one
   */
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

const OPTED_OUT_BYTES = Buffer.from(OPTED_OUT_BODY)
const GONE_BYTES = Buffer.from(GONE_BODY)

/** A strong ETag: the body's SHA-1, base64url (27 characters). */
export function etagOf(body: Buffer): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`
}

/** The head of a cache entry (KEYS[2]), or nil if the account was purged (KEYS[1] exists). */
const HEAD_UNLESS_PURGED = `if redis.call('exists', KEYS[1]) == 1 then return false end
return redis.call('getrange', KEYS[2], 0, ARGV[1])`

const RELEASE_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`

function errorBody(statusCode: number, error: string, message: string): string {
  return JSON.stringify({ statusCode, error, message })
}

interface Entry {
  version: string
  status: 200 | 404 | 501
  etag: string
  body: Buffer
}

const NL = 0x0a
const QUOTE = 0x22

/** The version and ETag from the head of a cache entry (its first bytes), or null. */
function headOf(raw: Buffer): { version: string; etag: string } | null {
  const e = splitEntry(raw)
  return e && e.status === 200 ? { version: e.version, etag: e.etag } : null
}

/** Parses a cache entry (or its head: the body may be cut); null for anything else (an older layout). */
function splitEntry(raw: Buffer): Entry | null {
  const a = raw.indexOf(NL)
  const b = a < 0 ? -1 : raw.indexOf(NL, a + 1)
  const c = b < 0 ? -1 : raw.indexOf(NL, b + 1)
  if (c < 0 || raw[b + 1] !== QUOTE) return null
  const status = Number(raw.toString('latin1', a + 1, b))
  if (status !== 200 && status !== 404 && status !== 501) return null
  return {
    version: raw.toString('latin1', 0, a),
    status,
    etag: raw.toString('latin1', b + 1, c),
    body: raw.subarray(c + 1),
  }
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
  const { notifier } = deps
  const now = deps.now ?? Date.now
  const pollMs = deps.pollMs ?? (notifier ? 250 : 15)
  // In-process single-flight in front of the Redis one: concurrent requests in this process share a promise.
  const inflight = new Map<string, Promise<CircleResult>>()
  // A very short-lived copy of served circles in this process, keyed by request URL (see local-cache.ts).
  const local = createLocalCache({ ttlMs: deps.localMs ?? 0, now })
  notifier?.onOptOutChange(() => local.clear())

  // Copies served lately are confirmed against Redis in the background, shortly before they expire (in their
  // last quarter of LOCAL_CACHE_MS): a hot circle then never waits for Redis, yet is never served more than
  // LOCAL_CACHE_MS after Redis last said it still stands (not opted out, not purged, same opt-out version,
  // same ETag, so not past its Redis TTL either). A copy not served since its last confirmation just expires.
  // Each confirmation costs the API ~20 us (measured), so each hot copy is confirmed about once per life.
  // Only the entry's head is read back (GETRANGE, unless purged, in one script per copy), not the body.
  const HEAD_BYTES = 128
  // In slices, each its own round trip: a thousand hot copies at once would stall the event loop for
  // milliseconds, which every request in flight would wait out (it showed in p99).
  const CONFIRM_SLICE = 25
  async function confirmCopies(): Promise<void> {
    const soon = now() + local.ttlMs / 4
    const due = local.entries().filter(([, e]) => e.used && e.until <= soon)
    for (let i = 0; i < due.length; i += CONFIRM_SLICE) {
      await confirmSlice(due.slice(i, i + CONFIRM_SLICE))
    }
  }
  async function confirmSlice(due: [string, LocalEntry][]): Promise<void> {
    const t0 = now()
    const generation = local.generation
    const dids = [...new Set(due.map(([, e]) => e.did))]
    const pipe = redis
      .pipeline()
      .get(schema.optOutsVersion)
      .smismember(schema.optOuts, ...dids)
    for (const [, e] of due) {
      // One command per copy (each costs the API more than Redis): both keys are in the DID's slot.
      pipe.eval(
        HEAD_UNLESS_PURGED,
        2,
        schema.accountPurged(e.did),
        schema.circle(e.did, e.variant),
        HEAD_BYTES - 1,
      )
    }
    const res = await pipe.exec()
    if (!res || local.generation !== generation) return
    const failed = res.find(([err]) => err)
    if (failed) throw failed[0]
    const version = (res[0]![1] as string | null) ?? '0'
    const optedOut = new Set(dids.filter((_, i) => (res[1]![1] as number[])[i] === 1))
    due.forEach(([key, e], i) => {
      const raw = res[2 + i]![1] as string | null
      const head = raw === null ? null : headOf(Buffer.from(raw, 'latin1'))
      if (optedOut.has(e.did) || head?.version !== version || head.etag !== e.etag) {
        local.drop(key, e)
      } else {
        e.until = t0 + local.ttlMs
        e.used = false
      }
    })
  }
  let confirming = false
  let lastWarn = 0
  const confirmFailed = (err: unknown) => {
    // Once per 10 s at most: with Redis away this would fail on every tick (the copies then just expire).
    if (now() - lastWarn < 10_000) return
    lastWarn = now()
    log.warn({ err }, 'confirming in-process circle copies failed (they expire instead)')
  }
  const confirmTimer =
    local.ttlMs > 0
      ? setInterval(
          () => {
            if (confirming) return
            confirming = true
            confirmCopies()
              .catch(confirmFailed)
              .finally(() => {
                confirming = false
              })
          },
          Math.max(20, Math.floor(local.ttlMs / 8)),
        )
      : undefined
  confirmTimer?.unref()

  /** `optOuts`: the opt-out set, read by the caller in a round trip it makes anyway. */
  async function compute(
    did: string,
    params: CircleParams,
    optOuts: readonly string[],
  ): Promise<{ status: 200 | 404 | 501; body: Buffer; ttl: number }> {
    const total = params.rings.reduce((a, b) => a + b, 0)
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
      return { status: 501, body: Buffer.from(body), ttl: deps.ttlSeconds }
    }
    partners = partners.filter((p) => !exclude.has(p.did))
    const lookup = await profiles.get([did, ...partners.map((p) => p.did)])
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
      generatedAt: new Date(now()).toISOString(),
    }
    return {
      status: 200,
      body: Buffer.from(JSON.stringify(circle)),
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
    const releaseFailed = (err: unknown) => {
      log.warn({ err }, 'circle lock release failed (it expires by itself)')
    }
    for (;;) {
      const token = randomBytes(8).toString('hex')
      // Each Redis round trip costs this process more CPU than the commands cost Redis (a socket write
      // and the wake-up of a reader on another core): a miss makes as few as it can. The opt-out set
      // comes with the lock (wasted only when someone else holds it).
      const [[lockErr, got], [optErr, optOuts]] = (await redis
        .pipeline()
        .set(lockKey, token, 'PX', deps.lockMs, 'NX')
        .smembers(schema.optOuts)
        .exec()) as [[Error | null, string | null], [Error | null, string[]]]
      if (lockErr) throw lockErr
      if (got === 'OK') {
        let r: Awaited<ReturnType<typeof compute>>
        try {
          if (optErr) throw optErr
          r = await compute(did, params, optOuts)
        } catch (err) {
          // Released and announced: waiters wake, find no entry and no lock, and try themselves.
          await redis
            .pipeline()
            .eval(RELEASE_LOCK, 1, lockKey, token)
            .publish(schema.circleReadyChannel, cacheKey)
            .exec()
            .catch(releaseFailed)
          throw err
        }
        const etag = etagOf(r.body)
        const head = Buffer.from(`${version}\n${r.status}\n${etag}\n`)
        // Written, recorded for the scheduler's snapshots (at most once per cache TTL per variant),
        // released and announced in one round trip: waiters wake and find the entry.
        const res = await redis
          .pipeline()
          .set(cacheKey, Buffer.concat([head, r.body]), 'EX', r.ttl)
          .zadd(schema.circleRequests, now(), did)
          .eval(RELEASE_LOCK, 1, lockKey, token)
          .publish(schema.circleReadyChannel, cacheKey)
          .exec()
        const [setErr] = res?.[0] ?? [new Error('no reply to the cache write')]
        const releaseErr = res?.[2]?.[0]
        if (releaseErr) releaseFailed(releaseErr)
        if (setErr) throw setErr
        return { status: r.status, body: r.body, etag, cache: 'miss' }
      }
      // Someone else computes: wait for their entry, or for their lock to vanish (they failed) and retry.
      // Each wait is registered before the look, so an announcement in between is not lost; the poll is
      // what is left when there is no notifier or an announcement went missing.
      while (now() < deadline) {
        const wake = notifier?.waitFor(cacheKey, pollMs)
        const [[, raw], [, locked]] = (await redis
          .pipeline()
          .getBuffer(cacheKey)
          .exists(lockKey)
          .exec()) as [[null, Buffer | null], [null, number]]
        const e = raw === null ? null : splitEntry(raw)
        if (e && e.version === version) {
          wake?.cancel()
          return { status: e.status, body: e.body, etag: e.etag, cache: 'shared' }
        }
        if (locked === 0) {
          wake?.cancel()
          break
        }
        if (wake) await wake.promise
        else await new Promise((r) => setTimeout(r, pollMs))
      }
      if (now() >= deadline) {
        // The holder is alive but slow beyond the lock's life: compute ourselves rather than wait longer.
        const [[optErr, optOuts]] = (await redis
          .pipeline()
          .smembers(schema.optOuts)
          .zadd(schema.circleRequests, now(), did)
          .exec()) as [[Error | null, string[]]]
        if (optErr) throw optErr
        const r = await compute(did, params, optOuts)
        return { status: r.status, body: r.body, etag: etagOf(r.body), cache: 'miss' }
      }
    }
  }

  return {
    /**
     * This process's copy of the answer to a request URL, if it served one within LOCAL_CACHE_MS: the hot
     * path, with no parsing, no Redis and no hashing. Only 200s are kept.
     */
    local(url: string): LocalEntry | undefined {
      return local.get(url)
    },
    /**
     * Serves a circle: cache, else one computation shared by every concurrent request. `url` names the
     * in-process copy of a 200 (see `local`); without it none is kept.
     */
    async get(did: string, params: CircleParams, url?: string): Promise<CircleResult> {
      const variant = variantOf(params)
      const generation = local.generation
      const [[, optedOut], [, purged], [, version], [, raw]] = (await redis
        .pipeline()
        .sismember(schema.optOuts, did)
        .exists(schema.accountPurged(did))
        .get(schema.optOutsVersion)
        .getBuffer(schema.circle(did, variant))
        .exec()) as [[null, number], [null, number], [null, string | null], [null, Buffer | null]]
      if (optedOut === 1) return { status: 403, body: OPTED_OUT_BYTES, cache: 'none' }
      // The indexer marks accounts it purged on a deleted/taken-down event: no circle, whatever the cache says.
      if (purged === 1) return { status: 404, body: GONE_BYTES, cache: 'none' }
      const v = version ?? '0'
      const e = raw === null ? null : splitEntry(raw)
      let r: CircleResult
      if (e && e.version === v) {
        r = { status: e.status, body: e.body, etag: e.etag, cache: 'hit' }
      } else {
        const key = `${did}|${variant}|${v}`
        let p = inflight.get(key)
        if (!p) {
          p = viaLock(did, params, variant, v).finally(() => inflight.delete(key))
          inflight.set(key, p)
        }
        r = await p
      }
      if (url !== undefined && r.status === 200) {
        local.set(url, { did, variant, body: r.body, etag: r.etag }, generation)
      }
      return r
    },
    /** Forgets this process's short-lived copies (after an opt-out change made here). */
    clearLocal() {
      local.clear()
    },
    /** Stops confirming copies in the background. */
    close() {
      clearInterval(confirmTimer)
      local.clear()
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
