import type { PrivacyEvent } from '@circles/core'
import { isValidDid, isValidRkey } from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import { luaSource, pipelineFor, withLuaSource } from '@circles/redis-wire'
import type { Redis } from 'ioredis'

// Who is opted out, and why. Three reasons: an admin's (the override), a block of the service's account
// (kept with its rkey: deleting that block opts back in) and the profile's `!no-unauthenticated` self-label.
// `schema.optOuts` is the union, which every reader uses; this script keeps it so, one change at a time,
// whoever makes the change (the indexer from the firehose, the API from an admin route).

/** One change of one reason of one account. `rkey` names the block (create) or the block deleted. */
export interface OptOutChange {
  did: string
  reason: 'admin' | 'block' | 'label'
  on: boolean
  rkey?: string
}

/** What a change left: whether the account is opted out now, and whether that moved. */
export interface OptOutOutcome {
  did: string
  optedOut: boolean
  changed: boolean
}

// The scripts, in lua/ with their KEYS and ARGV: one change of a reason each (opt-out-change.lua), and the
// purge mark of an opt-out or of a deletion deleted only if it is one (clear-purge-mark.lua).
const CHANGE_SCRIPT = luaSource(import.meta.url, 'opt-out-change')
const CLEAR_MARK_SCRIPT = luaSource(import.meta.url, 'clear-purge-mark')

/** A purge mark no interaction time reaches (2^32-1 s, the records' seconds at their top): an opt-out's. */
export const FOREVER_MS = 0xffff_ffff * 1000

type Args = (string | number | Buffer)[]
interface OptOutScripts extends Redis {
  optOutChange(...args: Args): Promise<number[]>
  clearPurgeMark(...args: Args): Promise<unknown>
}

/** The scripts as ioredis commands on this client (EVALSHA, loaded on NOSCRIPT): defined once per client. */
function withScripts(redis: Redis): OptOutScripts {
  const r = redis as OptOutScripts
  if (typeof r.optOutChange !== 'function') {
    redis.defineCommand('optOutChange', { numberOfKeys: 4, lua: CHANGE_SCRIPT })
    redis.defineCommand('clearPurgeMark', { numberOfKeys: 1, lua: CLEAR_MARK_SCRIPT })
  }
  return r
}

/**
 * Deletes the purge marks of `dids` that are opt-outs' (`optOut`: the accounts came back) or that are
 * deletions' (the accounts were reactivated), in one round trip; the other kind of mark stays.
 */
export async function clearPurgeMarks(
  redis: Redis,
  schema: RedisSchema,
  dids: readonly string[],
  kind: 'opt-out' | 'deletion',
): Promise<void> {
  if (dids.length === 0) return
  // Marks of several accounts: several slots, on a cluster maybe several nodes.
  const pipe = pipelineFor(withScripts(redis)) as unknown as {
    clearPurgeMark(...args: Args): unknown
    exec(): Promise<[Error | null, unknown][] | null>
  }
  const forever = String(FOREVER_MS / 1000)
  for (const did of dids)
    pipe.clearPurgeMark(schema.accountPurged(did), forever, kind === 'opt-out' ? 1 : 0)
  for (const [err] of (await pipe.exec()) ?? []) if (err) throw withLuaSource(err)
}

/** Applies changes in order, in one script call; announces a moved membership (caches drop old circles). */
export async function changeOptOuts(
  redis: Redis,
  schema: RedisSchema,
  changes: readonly OptOutChange[],
): Promise<OptOutOutcome[]> {
  if (changes.length === 0) return []
  const args: string[] = []
  for (const c of changes) args.push(c.did, c.reason, c.on ? '1' : '0', c.rkey ?? '')
  const keys = [schema.optOuts, schema.optOutsAdmin, schema.optOutsBlocks, schema.optOutsLabels]
  const res = await withScripts(redis)
    .optOutChange(...keys, ...args)
    .catch((err: unknown) => {
      throw withLuaSource(err)
    })
  const out = changes.map((c, i) => ({
    did: c.did,
    optedOut: res[2 * i] === 1,
    changed: res[2 * i + 1] === 1,
  }))
  if (out.some((o) => o.changed)) {
    // Circles cached under the old version are not served again; every API process drops its copies.
    await redis
      .pipeline()
      .incr(schema.optOutsVersion)
      .publish(schema.optOutsChannel, 'changed')
      .exec()
  }
  return out
}

/**
 * The changes the firehose's opt-out events stand for; events with an invalid DID or rkey are left out
 * (counted by the caller). Blocks of the service's account and any block deleted; labels on or off.
 */
export function optOutChanges(events: readonly PrivacyEvent[]): {
  changes: OptOutChange[]
  invalid: number
} {
  const changes: OptOutChange[] = []
  let invalid = 0
  for (const e of events) {
    if (e.type === 'label') {
      if (isValidDid(e.did)) changes.push({ did: e.did, reason: 'label', on: e.on })
      else invalid++
    } else if (isValidDid(e.author) && isValidRkey(e.rkey)) {
      changes.push({ did: e.author, reason: 'block', on: e.action === 'create', rkey: e.rkey })
    } else invalid++
  }
  return { changes, invalid }
}
