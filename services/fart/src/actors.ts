import { AppViewError, type BskyClient } from '@circles/bsky-client'
import { isValidDid, isValidHandle } from '@circles/core'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import { skippedWriteLogger } from './redis-faults.js'

// Turns the `:actor` path segment (handle or DID, with or without a leading @) into a DID. Nothing reaches a
// Redis key or the AppView before it passed the core validators.

export class ActorError extends Error {
  override name = 'ActorError'
  constructor(
    readonly statusCode: 400 | 404 | 503,
    message: string,
  ) {
    super(message)
  }
}

export function normalizeActor(raw: string): { did: string } | { handle: string } {
  const a = raw.trim().replace(/^@/, '')
  if (a.startsWith('did:')) {
    if (!isValidDid(a)) {
      throw new ActorError(
        400,
        'actor is not a valid DID: expected did:plc:<24 base32 chars> or did:web:<host>',
      )
    }
    return { did: a }
  }
  const h = a.toLowerCase()
  if (!isValidHandle(h)) {
    throw new ActorError(
      400,
      'actor must be a handle like alice.bsky.social or a DID like did:plc:...',
    )
  }
  return { handle: h }
}

export interface ActorResolver {
  resolve(raw: string): Promise<{ did: string; handle?: string }>
}

export function createActorResolver(deps: {
  redis: Redis
  schema: RedisSchema
  bsky: BskyClient
  ttlSeconds: number
  log: Logger
}): ActorResolver {
  const { redis, schema, bsky, ttlSeconds } = deps
  const skipped = skippedWriteLogger(deps.log, 'handle cache entry')
  // A small in-process layer over the Redis one: a cached circle asked for by handle then costs one round
  // trip, not two. Short-lived, so a handle that moves to another account is followed within a minute
  // here (and within HANDLE_TTL_SECONDS in Redis).
  const local = new Map<string, { did: string; until: number }>()
  const localMs = Math.min(60_000, ttlSeconds * 1000)
  const remember = (handle: string, did: string) => {
    if (local.size >= 10_000) local.delete(local.keys().next().value as string)
    local.set(handle, { did, until: Date.now() + localMs })
  }
  return {
    async resolve(raw) {
      const n = normalizeActor(raw)
      if ('did' in n) return n
      const hit = local.get(n.handle)
      if (hit && hit.until > Date.now()) return { did: hit.did, handle: n.handle }
      const key = schema.handleDid(n.handle)
      const cached = await redis.get(key)
      if (cached !== null && isValidDid(cached)) {
        remember(n.handle, cached)
        return { did: cached, handle: n.handle }
      }
      let did: string | null
      try {
        did = await bsky.resolveHandle(n.handle)
      } catch (err) {
        const why = err instanceof AppViewError ? err.message : 'unknown error'
        throw new ActorError(
          503,
          `cannot resolve handles right now (${why}); try again or use the DID`,
        )
      }
      if (did === null)
        throw new ActorError(404, `handle ${n.handle} does not resolve to an account`)
      if (!isValidDid(did))
        throw new ActorError(404, `handle ${n.handle} resolves to an unusable DID`)
      // Resolved is resolved: a Redis that refuses the write (out of memory) only costs the next request
      // another AppView call.
      await redis.set(key, did, 'EX', ttlSeconds).catch(skipped)
      remember(n.handle, did)
      return { did, handle: n.handle }
    },
  }
}
