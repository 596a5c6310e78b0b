import { type StreamEvent, shardOf } from '@circles/core'
import { describe, expect, it } from 'vitest'
import { emptyShards, routeEvents } from './shard-route.js'

function identity(did: string): StreamEvent {
  return { type: 'identity', did, handle: null, time: 1 }
}

// Two DIDs that fall in different shards of 2.
const dids = Array.from({ length: 20 }, (_, i) => `did:plc:${String(i).padStart(24, 'a')}`)
const a = dids.find((d) => shardOf(d, 2) === 0) as string
const b = dids.find((d) => shardOf(d, 2) === 1) as string

describe('routeEvents', () => {
  it('puts each event in the shard of its account, in order', () => {
    const into = emptyShards(2)
    routeEvents(into, [identity(a), identity(b), identity(a)], 5, { shards: 2, floors: [-1, -1] })
    expect(into).toEqual([[identity(a), identity(a)], [identity(b)]])
  })

  it("leaves out a frame's events for a shard whose cursor is at or past it", () => {
    const into = emptyShards(2)
    const route = { shards: 2, floors: [-1, 7] }
    routeEvents(into, [identity(a), identity(b)], 7, route)
    routeEvents(into, [identity(a), identity(b)], 8, route)
    expect(into[0]).toHaveLength(2)
    expect(into[1]).toEqual([identity(b)])
  })

  it('with one shard takes everything', () => {
    const into = emptyShards(1)
    routeEvents(into, [identity(a), identity(b)], 3, { shards: 1, floors: [-1] })
    expect(into[0]).toHaveLength(2)
  })
})
