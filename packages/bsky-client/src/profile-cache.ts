import { isValidDid } from '@circles/core'
import { createLogger, type Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import { pipelineFor } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import type { BskyClient, Profile } from './client.js'
import { indexNames, trimProfileNames } from './profile-names.js'

// Profiles live in Redis under `schema.profile(did)` as JSON with a TTL, shared by every API process. The
// indexer deletes the key on an #identity event, so a handle change shows at the next lookup, not a TTL later.
// A DID the AppView does not return (deleted, taken down, deactivated) is cached as `{"did","missing":true}`
// for a shorter time, so it is not asked again on every request but comes back soon if it reappears.
// Each profile written also writes its handle and display name to the name index (profile-names.ts), which
// the page's suggestions read without asking the AppView.

export interface ProfileCacheOptions {
  redis: Redis
  schema: RedisSchema
  client: BskyClient
  /** @default 86400 (a day: identity events evict changed profiles sooner) */
  ttlSeconds?: number
  /** TTL of "the AppView does not know this DID". @default 600 */
  missingTtlSeconds?: number
  /**
   * Most members the name index keeps (two per profile at most: handle and display name). Its members do
   * not expire with their profiles, so without a cap it would grow with every account ever looked up (the
   * network has tens of millions) when the profile TTL is long; ~100 bytes a member. @default 200000
   */
  maxNames?: number
  logger?: Logger
  now?: () => number
}

export interface ProfileLookup {
  /** Profiles found, from cache or AppView. */
  profiles: Map<string, Profile>
  /** DIDs the AppView answered for without a profile: deleted, taken down or deactivated accounts. */
  missing: Set<string>
  /** False when some DIDs could not be looked up because the AppView failed: neither found nor missing. */
  complete: boolean
}

export interface ProfileCache {
  /** Cache first, then the AppView for the rest (batched); never throws on AppView failure. */
  get(dids: readonly string[]): Promise<ProfileLookup>
  /** Cache only. */
  peek(dids: readonly string[]): Promise<ProfileLookup>
  /** Stores profiles (e.g. pre-seeding, or after a fetch made elsewhere). */
  put(profiles: readonly Profile[]): Promise<void>
}

interface Cached {
  did: string
  handle?: string
  displayName?: string
  avatar?: string
  description?: string
  missing?: true
}

/**
 * What the cache holds for `did`, from the value of its key (a string, or the bytes of one): its profile,
 * 'missing' (the AppView has none), or null when there is nothing usable (ask the AppView). For a caller
 * that reads the keys itself (the API's history reads hundreds at once on a connection of its own).
 */
export function cachedProfile(did: string, raw: unknown): Profile | 'missing' | null {
  const text = Buffer.isBuffer(raw) ? raw.toString() : raw
  if (typeof text !== 'string') return null
  try {
    const v = JSON.parse(text) as Cached
    if (v.missing) return 'missing'
    if (typeof v.handle !== 'string') return null
    // The key's DID, whatever the value says (a parsed object of our own: no copy needed).
    v.did = did
    return v as Profile
  } catch {
    return null
  }
}

export function createProfileCache(opts: ProfileCacheOptions): ProfileCache {
  const { redis, schema, client } = opts
  const ttl = opts.ttlSeconds ?? 86_400
  const missingTtl = opts.missingTtlSeconds ?? 600
  const log = opts.logger ?? createLogger('bsky-client:profiles')
  const now = opts.now ?? Date.now
  const maxNames = opts.maxNames ?? 200_000
  // The trim runs after a write, at most once a minute per process: a few reads when there is nothing to do.
  let lastTrim = Number.NEGATIVE_INFINITY
  function trimSoon(): void {
    const t = now()
    if (t - lastTrim < 60_000) return
    lastTrim = t
    trimProfileNames(redis, schema, { maxAgeMs: ttl * 1000, maxMembers: maxNames, now: t }).catch(
      (err: unknown) => log.warn({ err }, 'trimming the profile name index failed'),
    )
  }

  async function peek(input: readonly string[]): Promise<ProfileLookup> {
    const dids = [...new Set(input)].filter((d) => isValidDid(d))
    const profiles = new Map<string, Profile>()
    const missing = new Set<string>()
    if (dids.length === 0) return { profiles, missing, complete: true }
    // GETs in one pipeline rather than MGET: profile keys live in different cluster slots.
    const pipe = pipelineFor(redis)
    for (const d of dids) pipe.get(schema.profile(d))
    const results = (await pipe.exec()) ?? []
    let complete = true
    dids.forEach((d, i) => {
      const [err, raw] = results[i] ?? [null, null]
      const found = err ? null : cachedProfile(d, raw)
      if (found === 'missing') missing.add(d)
      else if (found) profiles.set(d, found)
      else complete = false
    })
    return { profiles, missing, complete }
  }

  async function put(list: readonly Profile[]): Promise<void> {
    if (list.length === 0) return
    const pipe = pipelineFor(redis)
    const valid = list.filter((p) => isValidDid(p.did))
    for (const p of valid) pipe.set(schema.profile(p.did), JSON.stringify(p), 'EX', ttl)
    indexNames(pipe, schema, valid, now())
    await pipe.exec()
    trimSoon()
  }

  async function get(input: readonly string[]): Promise<ProfileLookup> {
    const dids = [...new Set(input)].filter((d) => isValidDid(d))
    const cached = await peek(dids)
    const todo = dids.filter((d) => !cached.profiles.has(d) && !cached.missing.has(d))
    if (todo.length === 0) return { ...cached, complete: true }
    let fetched: Profile[]
    try {
      fetched = await client.getProfiles(todo)
    } catch (err) {
      log.warn({ err, count: todo.length }, 'profiles unavailable: serving without them')
      return { profiles: cached.profiles, missing: cached.missing, complete: false }
    }
    const pipe = pipelineFor(redis)
    const byDid = new Map(fetched.map((p) => [p.did, p]))
    const found: Profile[] = []
    for (const d of todo) {
      const p = byDid.get(d)
      if (p) {
        cached.profiles.set(d, p)
        found.push(p)
        pipe.set(schema.profile(d), JSON.stringify(p), 'EX', ttl)
      } else {
        cached.missing.add(d)
        pipe.set(schema.profile(d), JSON.stringify({ did: d, missing: true }), 'EX', missingTtl)
      }
    }
    indexNames(pipe, schema, found, now())
    await pipe.exec()
    trimSoon()
    return { profiles: cached.profiles, missing: cached.missing, complete: true }
  }

  return { get, peek, put }
}
