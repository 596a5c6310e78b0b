import type { StreamEvent } from './interaction.js'

/** The account an event belongs to: its author (interactions, blocks) or its subject DID (the rest). */
export function eventDid(e: StreamEvent): string {
  return 'author' in e ? e.author : e.did
}

/**
 * The stream shard (0 .. shards-1) of an account: FNV-1a (32 bit) of its DID, modulo `shards`. Stable across
 * processes, releases and machines (no seed), since the firehose and every reader must agree; one author's
 * events all go to one shard, so their order (a create before its delete) survives. Pure.
 */
export function shardOf(did: string, shards: number): number {
  if (shards <= 1) return 0
  let h = 0x811c9dc5
  for (let i = 0; i < did.length; i++) {
    h ^= did.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) % shards
}
