import { didTableEntries, hiddenChecks, hiddenFromReplies } from '@circles/interaction-index'
import type { RedisSchema } from '@circles/redis-schema'
import { Frame, type FrameSender, withLuaSource } from '@circles/redis-wire'

// The fold's bulk commands (a check and a DID table entry per partner, a script call per partner's day
// blobs: ~10^4 commands for a repo of 3,000 partners) go as RESP frames on a connection of the fold's own
// (@circles/redis-wire), not through ioredis: there a Command object, a promise and a timer per command
// were most of a cold fold's CPU (BENCHMARKS.md, "Backfill").

/** Sends a frame; its replies, or the first error reply thrown (naming its Lua file when it has one). */
export async function sendFrame(wire: FrameSender, frame: Frame): Promise<unknown[]> {
  const replies = await wire.send(frame)
  for (const r of replies) if (r instanceof Error) throw withLuaSource(r)
  return replies
}

/** `hiddenAccounts` (@circles/interaction-index) in one frame on `wire`. */
export async function hiddenOn(
  wire: FrameSender,
  schema: RedisSchema,
  dids: readonly string[],
  opts: { queued?: boolean } = {},
): Promise<Set<string>> {
  if (dids.length === 0) return new Set()
  const frame = new Frame(256 + 96 * dids.length)
  hiddenChecks(frame, schema, dids, opts)
  return hiddenFromReplies(dids, await sendFrame(wire, frame), opts)
}

/** `rememberDids` (@circles/interaction-index): one HSET per DID table bucket, written into `frame`. */
export function rememberIn(frame: Frame, schema: RedisSchema, dids: Iterable<string>): void {
  for (const [bucket, list] of didTableEntries(dids))
    frame.call('HSET', schema.didTable(bucket), ...list)
}
