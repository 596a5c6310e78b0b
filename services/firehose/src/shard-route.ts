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
