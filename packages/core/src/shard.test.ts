import { describe, expect, it } from 'vitest'
import { eventDid, shardOf } from './shard.js'

describe('shardOf', () => {
  it('is FNV-1a of the DID modulo the shard count (fixed values: every process must agree)', () => {
    // FNV-1a 32 of "a" is 0xe40c292c (the published test vector); the rest computed once and pinned.
    expect(shardOf('a', 1 << 30)).toBe(0xe40c292c % (1 << 30))
    expect([2, 3, 7, 64].map((s) => shardOf('did:plc:z72i7hdynmk6r22z27h6tvur', s))).toEqual(PINNED)
  })

  it('puts everything in shard 0 when there is one shard', () => {
    expect(shardOf('did:plc:abc', 1)).toBe(0)
    expect(shardOf('', 1)).toBe(0)
  })

  it('spreads DIDs over the shards about evenly', () => {
    const counts = [0, 0, 0, 0]
    for (let i = 0; i < 4000; i++) {
      const k = shardOf(`did:plc:${i.toString(36).padStart(24, 'q')}`, 4)
      counts[k] = (counts[k] ?? 0) + 1
    }
    for (const c of counts) expect(c).toBeGreaterThan(800)
  })
})

describe('eventDid', () => {
  it('is the author of interactions and blocks, the DID of the rest', () => {
    expect(
      eventDid({ type: 'delete', record: 'like', author: 'did:plc:a', rkey: 'x', time: 0 }),
    ).toBe('did:plc:a')
    expect(eventDid({ type: 'identity', did: 'did:plc:b', handle: null, time: 0 })).toBe(
      'did:plc:b',
    )
  })
})

const PINNED = [1, 0, 3, 7]
