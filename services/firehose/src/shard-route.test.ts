import { type StreamEvent, shardOf } from '@circles/core'
import { describe, expect, it } from 'vitest'
import { emptyShards, resumeAt, resumeFrom, routeEvents } from './shard-route.js'

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

describe('resumeFrom', () => {
  const keys = ['c0', 'c1', 'c2']

  it('resumes from the lowest cursor; each shard keeps its own as floor, one without starts there', () => {
    expect(resumeFrom(['900', null, '850'], keys)).toEqual({
      cursor: 850,
      floors: [900, 850, 850],
      stored: ['900', null, '850'],
      missing: ['c1'],
    })
  })

  it('is null when no shard holds a cursor, and refuses one that is not a seq, naming its key', () => {
    expect(resumeFrom([null, null, null], keys)).toBeNull()
    expect(() => resumeFrom(['1', '1x', null], keys)).toThrow(/^c1 holds "1x", not a seq/)
    expect(resumeAt(null, [null, null])).toEqual({
      cursor: null,
      floors: [-1, -1],
      stored: [null, null],
    })
  })
})
