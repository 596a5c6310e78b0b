import { createHash } from 'node:crypto'
import { BACKFILL_QUEUE, backfillJobId, backfillQueueOptions } from '@circles/backfill'
import { nameMembers } from '@circles/bsky-client'
import { isValidHandle } from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import { pipelineFor, scanPrimaries } from '@circles/redis-wire'
import { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import { type RollupPipeline, withRollupScripts } from './fence.js'

// The forget step's cache part: what the API, the snapshots job and the backfill keep about a forgotten
// account (the backfill's state of its repo and of its circle; the day blobs it wrote go in
// forget-blobs.ts). None of it is fenced: these are deletions of copies and states, right whoever makes
// them and whenever, and a stale runner's deletion cannot bring anything back.

export interface CacheForgetResult {
  /**
   * Keys deleted: snapshots, profiles, backfill states, handle resolutions, avatars, cached circles,
   * images and locks.
   */
  keysDeleted: number
  /** Members removed from the tracked set, the circle requests and the profile name index. */
  listMembers: number
}

interface CachedProfile {
  handle?: unknown
  displayName?: unknown
  avatar?: unknown
}

/**
 * Handles, avatar URLs and name-index members from the accounts' cached profiles (JSON written by
 * bsky-client). A member whose profile has already expired stays until the index's trim: the suggestions
 * check each candidate's profile, so it is never shown.
 */
async function profileRefs(
  redis: Redis,
  schema: RedisSchema,
  dids: readonly string[],
): Promise<{ handles: [string, string][]; avatars: string[]; names: string[] }> {
  // GETs in one pipeline rather than MGET: profile keys live in different cluster slots.
  const pipe = pipelineFor(redis)
  for (const d of dids) pipe.get(schema.profile(d))
  const replies = (await pipe.exec()) ?? []
  const handles: [string, string][] = []
  const avatars: string[] = []
  const names: string[] = []
  dids.forEach((d, i) => {
    const raw = replies[i]?.[1]
    if (typeof raw !== 'string') return
    let p: CachedProfile
    try {
      p = JSON.parse(raw) as CachedProfile
    } catch {
      return
    }
    if (typeof p.handle === 'string' && isValidHandle(p.handle)) handles.push([p.handle, d])
    names.push(
      ...nameMembers({
        did: d,
        handle: typeof p.handle === 'string' ? p.handle : undefined,
        displayName: typeof p.displayName === 'string' ? p.displayName : undefined,
      }),
    )
    // The API's avatar cache key: a SHA-1 of the avatar URL (services/fart/src/avatars.ts).
    if (typeof p.avatar === 'string' && p.avatar !== '') {
      avatars.push(schema.avatar(createHash('sha1').update(p.avatar).digest('hex')))
    }
  })
  return { handles, avatars, names }
}

/**
 * Cached circles, images and locks of `dids`: one SCAN of the circle keys for the whole batch (a SCAN
 * per account would walk the keyspace once each).
 */
async function circleKeys(
  redis: Redis,
  schema: RedisSchema,
  dids: readonly string[],
  onPage?: () => Promise<void>,
): Promise<string[]> {
  const prefixes = new Set(dids.flatMap((d) => schema.circleCachePrefixes(d)))
  const out: string[] = []
  for await (const { keys: page } of scanPrimaries(redis, schema.circleCachePattern)) {
    for (const key of page) {
      const close = key.indexOf('}:')
      if (close > 0 && prefixes.has(key.slice(0, close + 2))) out.push(key)
    }
    await onPage?.()
  }
  return out
}

/** Deletes what the caches and lists hold about `dids`. */
export async function forgetCaches(
  redis: Redis,
  schema: RedisSchema,
  dids: readonly string[],
  onPage?: () => Promise<void>,
): Promise<CacheForgetResult> {
  const result: CacheForgetResult = { keysDeleted: 0, listMembers: 0 }
  if (dids.length === 0) return result
  const { handles, avatars, names } = await profileRefs(redis, schema, dids)
  const keys = [
    ...dids.flatMap((d) => [
      schema.snapshot(d),
      schema.profile(d),
      schema.backfillRepo(d),
      schema.backfillAccount(d),
    ]),
    ...avatars,
    ...(await circleKeys(redis, schema, dids, onPage)),
  ]
  const pipe = pipelineFor(withRollupScripts(redis)) as RollupPipeline
  // One UNLINK per key: they live in different cluster slots.
  for (const key of keys) pipe.unlink(key)
  // A handle may have moved to another account since: its resolution is deleted only if it names this one.
  for (const [handle, did] of handles) {
    pipe.deleteIfEqual(schema.handleDid(handle), did)
  }
  pipe.srem(schema.tracked, ...dids)
  pipe.zrem(schema.circleRequests, ...dids)
  if (names.length > 0) pipe.zrem(schema.profileNames, ...names)
  const replies = (await pipe.exec()) ?? []
  replies.forEach(([err, n], i) => {
    if (err) throw err
    if (i < keys.length + handles.length) result.keysDeleted += n as number
    else result.listMembers += n as number
  })
  // The members' write times: bookkeeping of the index, not counted as list members of their own.
  if (names.length > 0) await redis.zrem(schema.profileNamesSeen, ...names)
  result.keysDeleted += await forgetBackfillJobs(redis, schema, dids)
  return result
}

/**
 * A queued backfill job names its account (its id and data). A running one cannot be removed: its worker
 * finds the account hidden and ends the job, which then goes as every finished job does.
 */
async function forgetBackfillJobs(redis: Redis, schema: RedisSchema, dids: readonly string[]) {
  const queue = new Queue(BACKFILL_QUEUE, { connection: redis, ...backfillQueueOptions(schema) })
  let removed = 0
  try {
    for (const d of dids) {
      // (Queue.remove answers 1 for a job that is not there too: ask first, to count what went.)
      const job = await queue.getJob(backfillJobId(d))
      if (
        job &&
        (await job.remove().then(
          () => true,
          () => false,
        ))
      )
        removed++
    }
  } finally {
    await queue.close()
  }
  return removed
}
