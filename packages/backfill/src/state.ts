import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'

// What the API shows of an account's backfill, from one hash (`schema.backfillAccount`) the worker keeps:
// state, done and total (repos: the account's own and its top partners'), reason (of a failure), at (ms).

export type BackfillStateName = 'none' | 'queued' | 'running' | 'done' | 'failed'

export interface BackfillState {
  state: BackfillStateName
  /** Repos folded of those planned, 0..1 (1 once done). */
  progress: number
  /** Why it failed (a `RepoSourceError` reason or `internal`), only when failed. */
  reason?: string
}

const NAMES = new Set<string>(['queued', 'running', 'done', 'failed'])

/** The state as stored; `none` when the account was never queued (or its state was forgotten). */
export function parseBackfillState(h: Record<string, string>): BackfillState {
  const state = NAMES.has(h.state ?? '') ? (h.state as BackfillStateName) : 'none'
  if (state === 'done') return { state, progress: 1 }
  const done = Number(h.done ?? 0)
  const total = Number(h.total ?? 0)
  const progress =
    total > 0 && done >= 0 ? Math.min(1, Math.round((done / total) * 1000) / 1000) : 0
  return state === 'failed'
    ? { state, progress, reason: h.reason ?? 'internal' }
    : { state, progress }
}

export async function readBackfillState(
  redis: Redis,
  schema: RedisSchema,
  did: string,
): Promise<BackfillState> {
  return parseBackfillState(await redis.hgetall(schema.backfillAccount(did)))
}

/** Marks an account queued unless it already has a state; true when it had none. */
export async function markQueued(
  redis: Redis,
  schema: RedisSchema,
  did: string,
  nowMs: number,
): Promise<boolean> {
  const key = schema.backfillAccount(did)
  const set = await redis.hsetnx(key, 'state', 'queued')
  if (set === 1) await redis.hset(key, 'at', nowMs)
  return set === 1
}
