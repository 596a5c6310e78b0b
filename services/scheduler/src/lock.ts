import { randomBytes } from 'node:crypto'
import { withLuaSource } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { luaScript } from './lua.js'

// A mutex per job kind: SET NX PX with a random token; only the holder may extend or release it (Lua
// compare-and-act). BullMQ's concurrency 1 already serialises one worker, but two scheduler processes
// would each run one: the lock makes "no two runs of one kind at once" hold across processes. The expiry
// frees it if the holder dies; a long job extends it between steps. A holder that stalls past the expiry
// still believes it holds the lock: where that matters (the roll-up), the lock also hands out a fencing
// number that the writes themselves check (fence.ts).

/** EVAL of one of the scheduler's scripts; an error raised inside it names the file and line. */
function evalScript(redis: Redis, name: string, keys: string[], args: (string | number)[]) {
  return redis.eval(luaScript(name), keys.length, ...keys, ...args).catch((err: unknown) => {
    throw withLuaSource(err)
  })
}

export class LockBusyError extends Error {
  override name = 'LockBusyError'
}

export class LockLostError extends Error {
  override name = 'LockLostError'
}

export interface Lock {
  /** The fencing number (above every earlier holder's), or null for a lock taken without a counter. */
  readonly fence: number | null
  /** Pushes the expiry out again; throws LockLostError if another holder has it now. */
  extend(): Promise<void>
  release(): Promise<void>
}

/**
 * Takes the lock, or returns null when another holder has it. With `fenceCounter` (a key in the lock's
 * slot: `schema.schedulerFenceCounter`), the same script draws the holder's fencing number from it.
 */
export async function acquireLock(
  redis: Redis,
  key: string,
  ttlMs: number,
  fenceCounter?: string,
): Promise<Lock | null> {
  const token = randomBytes(12).toString('hex')
  let fence: number | null = null
  if (fenceCounter === undefined) {
    const ok = await redis.set(key, token, 'PX', ttlMs, 'NX')
    if (ok !== 'OK') return null
  } else {
    const n = Number(
      await evalScript(redis, 'lock-acquire-fenced', [key, fenceCounter], [token, ttlMs]),
    )
    if (n === 0) return null
    fence = n
  }
  return {
    fence,
    async extend() {
      const n = await evalScript(redis, 'lock-extend', [key], [token, String(ttlMs)])
      if (n !== 1) throw new LockLostError(`lock ${key} expired or was taken over`)
    },
    async release() {
      await evalScript(redis, 'lock-release', [key], [token])
    },
  }
}

/** Runs `fn` under the lock, or throws LockBusyError (BullMQ retries the job with backoff). */
export async function withLock<T>(
  redis: Redis,
  key: string,
  ttlMs: number,
  fn: (lock: Lock) => Promise<T>,
): Promise<T> {
  const lock = await acquireLock(redis, key, ttlMs)
  if (!lock) throw new LockBusyError(`another run holds ${key}`)
  try {
    return await fn(lock)
  } finally {
    await lock.release()
  }
}
