import { eventDid, type StreamEvent, shardOf } from '@circles/core'

/**
 * Where a session's events go (FIREHOSE_SHARDS): `floors[k]` is shard k's stored cursor when the session
 * started (-1: none), and the session reads the relay from the lowest of them. A shard whose cursor is
 * ahead already holds the events of the frames up to it (a batch's MULTIs are per shard, and one may have
 * gone through where another failed), so those are left out: no shard gets an event twice, and no
 * transaction has to span the shards' slots.
 */
export interface Route {
  shards: number
  floors: readonly number[]
}

/** The events of the frame `seq` added to a batch's per-shard lists (`into`). Pure. */
export function routeEvents(
  into: StreamEvent[][],
  events: readonly StreamEvent[],
  seq: number,
  route: Route,
): void {
  if (route.shards === 1) {
    // The session never takes a frame at or below the one cursor: no filter, no hash.
    const list = into[0] as StreamEvent[]
    for (const e of events) list.push(e)
    return
  }
  for (const e of events) {
    const k = shardOf(eventDid(e), route.shards)
    if (seq > (route.floors[k] as number)) (into[k] as StreamEvent[]).push(e)
  }
}

/** One empty list per shard. */
export function emptyShards(shards: number): StreamEvent[][] {
  return Array.from({ length: shards }, () => [])
}

/** Where a session resumes: the relay cursor, and each shard's floor (its route). */
export interface Resume {
  cursor: number | null
  /** Per shard: its stored cursor, or `cursor` (-1 for none) where it holds none. */
  floors: number[]
  /** Per shard: what its cursor key held, for its first batch's compare-and-set. */
  stored: (string | null)[]
}

/**
 * The resume rule, from what the shards' cursor keys hold: the relay is read again from the lowest
 * cursor, and each shard's floor is its own; a shard without one (FIREHOSE_SHARDS raised, or its Redis
 * lost its data) starts at that lowest cursor. Null when no shard holds a cursor (the caller falls back).
 * A value that is not a seq throws, naming the key. Pure.
 */
export function resumeFrom(
  stored: (string | null)[],
  keys: readonly string[],
): (Resume & { missing: string[] }) | null {
  const seqs = stored.map((value, k) => {
    if (value === null) return null
    const n = Number(value)
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
      throw new RangeError(`${keys[k]} holds ${JSON.stringify(value)}, not a seq: fix or delete it`)
    }
    return n
  })
  const present = seqs.filter((n): n is number => n !== null)
  if (present.length === 0) return null
  const cursor = Math.min(...present)
  return {
    cursor,
    floors: seqs.map((v) => v ?? cursor),
    stored,
    missing: keys.filter((_, k) => seqs[k] === null),
  }
}

/** Every shard starting at one cursor (none stored: the fallback, FIREHOSE_CURSOR or live). */
export function resumeAt(cursor: number | null, stored: (string | null)[]): Resume {
  return { cursor, floors: stored.map(() => cursor ?? -1), stored }
}
