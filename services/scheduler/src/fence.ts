import type { RedisSchema } from '@circles/redis-schema'
import { groupByNode, keySlot, withLuaSource } from '@circles/redis-wire'
import type { ChainableCommander, Redis } from 'ioredis'
import { luaScript } from './lua.js'

// Fencing of the roll-up (and of the prune's DID table sweep, with fence keys of its own). The lock
// (lock.ts) hands each holder a fencing number above every earlier holder's. Every fenced write (a day
// blob, the cursor, the free of an hour, a DID table HDEL) runs in a script that first checks that number
// against a copy in the written key's own cluster slot, and refuses with FENCED if it differs. A holder
// claims all 16384 copies before its first write, so once another runner has taken the lock over, the
// stale runner's next write is refused, however long it stalled, and whatever it had already sent. The
// alternative, naming the lock key in every script, would put keys of two slots in one script: a
// CROSSSLOT error on Redis Cluster, where the fold script works today.

export class FencedOutError extends Error {
  override name = 'FencedOutError'
}

const SLOTS = 16384
let slotTags: string[] | undefined

/** A short tag per cluster slot (base-36 numbers, the first that lands in each slot); ~0.1 s, once. */
function tags(): string[] {
  if (slotTags) return slotTags
  const out = new Array<string>(SLOTS)
  let left = SLOTS
  for (let n = 0; left > 0; n++) {
    const tag = n.toString(36)
    const slot = keySlot(tag)
    if (out[slot] === undefined) {
      out[slot] = tag
      left--
    }
  }
  slotTags = out
  return out
}

/** The roll-up's scripts, as ioredis defines them on a client and its pipelines (EVALSHA, loaded on NOSCRIPT). */
interface RollupCommands {
  rollupClaim(fenceKey: string, fence: number): Promise<number>
  rollupFoldBuffer(
    fenceKey: string,
    sentKey: string,
    receivedKey: string,
    ...args: (string | number | Buffer)[]
  ): Promise<(number | Buffer)[]>
  rollupCursor(fenceKey: string, cursorKey: string, fence: number, hour: number): Promise<number>
  rollupFree(fenceKey: string, key: string, fence: number, ...member: string[]): Promise<number>
  rollupHset(
    fenceKey: string,
    key: string,
    fence: number,
    ...fields: (string | Buffer)[]
  ): Promise<number>
  rollupHdel(
    fenceKey: string,
    key: string,
    fence: number,
    ...fields: (string | Buffer)[]
  ): Promise<number>
  /** HDEL of each field (field, value pairs) whose value is still the one given. */
  fencedHdelEqual(
    fenceKey: string,
    key: string,
    fence: number,
    ...pairs: (string | Buffer)[]
  ): Promise<number>
  forgetRewriteBuffer(
    fenceKey: string,
    key: string,
    fence: number,
    ...args: (string | number | Buffer)[]
  ): Promise<(number | Buffer)[]>
  forgetDequeue(
    fenceKey: string,
    queue: string,
    fence: number,
    member: string,
    score: string,
  ): Promise<number>
  deleteIfEqual(key: string, value: string): Promise<number>
}

export type RollupScripts = Redis & RollupCommands
/** A pipeline of a `RollupScripts` client (its calls queue and return the pipeline, not a promise). */
export type RollupPipeline = ChainableCommander & RollupCommands

const SCRIPTS = [
  ['rollupClaim', 'fence-claim', 1],
  ['rollupFold', 'fenced-fold', 3],
  ['rollupCursor', 'fenced-cursor', 2],
  ['rollupFree', 'fenced-free', 2],
  ['rollupHset', 'fenced-hset', 2],
  ['rollupHdel', 'fenced-hdel', 2],
  ['fencedHdelEqual', 'fenced-hdel-equal', 2],
  ['forgetRewrite', 'fenced-rewrite', 2],
  ['forgetDequeue', 'fenced-dequeue', 2],
  ['deleteIfEqual', 'delete-if-equal', 1],
] as const

export function withRollupScripts(redis: Redis): RollupScripts {
  const r = redis as RollupScripts
  if (typeof r.rollupFoldBuffer !== 'function') {
    for (const [name, file, keys] of SCRIPTS) {
      redis.defineCommand(name, { numberOfKeys: keys, lua: luaScript(file) })
    }
  }
  return r
}

/**
 * A FENCED reply as a FencedOutError; any other error as it is, naming the script's file and line when a
 * script raised it.
 */
export function fenceError(err: Error): Error {
  if (err.message.startsWith('FENCED')) return new FencedOutError(err.message, { cause: err })
  return withLuaSource(err)
}

/** Runs a pipeline; the first error (a FENCED one as FencedOutError) is thrown. */
export async function execFenced(pipe: ChainableCommander): Promise<unknown[]> {
  const replies = (await pipe.exec()) ?? []
  return replies.map(([err, reply]) => {
    if (err) throw fenceError(err)
    return reply
  })
}

/**
 * One fenced script call per item (`add` queues it), in a pipeline per cluster node (`groupByNode`: a
 * pipeline spanning nodes is refused, and the fence copies are in every slot), the nodes' pipelines all at
 * once; on one Redis the one pipeline as before. Replies in the order of `items`; the first error thrown as
 * `execFenced` does. Order holds within a node, which is all a fenced write needs: its check and its write
 * are in one script, on the written key's slot.
 */
export async function execFencedByNode<T>(
  redis: Redis,
  items: readonly T[],
  keyOf: (item: T) => string,
  add: (pipe: RollupPipeline, item: T) => void,
): Promise<unknown[]> {
  const scripts = withRollupScripts(redis)
  const at = (i: number) => items[i] as T
  const out = new Array<unknown>(items.length)
  const groups = groupByNode(
    redis,
    items.map((_, i) => i),
    (i) => keyOf(at(i)),
  )
  await Promise.all(
    groups.map(async (group) => {
      const pipe = scripts.pipeline() as RollupPipeline
      for (const i of group) add(pipe, at(i))
      const replies = await execFenced(pipe)
      group.forEach((i, j) => {
        out[i] = replies[j]
      })
    }),
  )
  return out
}

/** A key of the live index the roll-up frees: the whole key, or one member of a set. */
export interface FreeTarget {
  key: string
  member?: string
}

/** One lock holder's fencing number, with its copies in every cluster slot. */
export interface Fence {
  readonly number: number
  /** The fence key in `key`'s cluster slot, which a script writing `key` names as its first key. */
  keyFor(key: string): string
  /** Claims every slot's fence for this number (once; later calls wait for the first). */
  claim(): Promise<void>
}

/** The roll-up's writes, fenced by one lock holder's number. */
export interface RollupFence extends Fence {
  /** Moves the roll-up cursor forward to `hour`; false when it was already there or past. */
  moveCursor(hour: number): Promise<boolean>
  /** Frees the keys of a folded hour, each behind the fence of its slot. */
  free(targets: readonly FreeTarget[]): Promise<void>
}

/**
 * A fence whose copy in each slot is `fenceKey(tag)`: `schema.rollupFence` for the roll-up,
 * `schema.pruneFence` for the prune. Two kinds never share copies: a prune holder's claim must not fence
 * out the roll-up's holder.
 */
export function createFence(
  redis: Redis,
  fenceKey: (slotTag: string) => string,
  fence: number,
): Fence {
  if (!Number.isSafeInteger(fence) || fence <= 0) throw new Error(`bad fencing number ${fence}`)
  let claimed: Promise<void> | undefined
  return {
    number: fence,
    keyFor: (key) => fenceKey(tags()[keySlot(key)] as string),
    claim() {
      claimed ??= (async () => {
        await execFencedByNode(redis, tags().map(fenceKey), String, (pipe, key) =>
          pipe.rollupClaim(key, fence),
        )
      })()
      return claimed
    },
  }
}

export function createRollupFence(redis: Redis, schema: RedisSchema, fence: number): RollupFence {
  const scripts = withRollupScripts(redis)
  const base = createFence(redis, schema.rollupFence, fence)
  const { keyFor, claim } = base
  return {
    ...base,
    async moveCursor(hour) {
      await claim()
      const key = schema.rollupCursor
      try {
        return (await scripts.rollupCursor(keyFor(key), key, fence, hour)) === 1
      } catch (err) {
        throw fenceError(err as Error)
      }
    },
    async free(targets) {
      await claim()
      await execFencedByNode(
        redis,
        targets,
        (t) => t.key,
        (pipe, t) =>
          pipe.rollupFree(
            keyFor(t.key),
            t.key,
            fence,
            ...(t.member === undefined ? [] : [t.member]),
          ),
      )
    },
  }
}
