import { describe, expect, it } from 'vitest'
import { InteractionLedger, weightedScore } from '../src/ledger.js'

const A = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
const B = 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb'
const C = 'did:plc:cccccccccccccccccccccccc'
const uri = (did: string, rkey: string) => `at://${did}/app.bsky.feed.post/${rkey}`

describe('InteractionLedger', () => {
  it('tallies both directions, undoes a record whole, and forgets a deleted account both ways', () => {
    const l = new InteractionLedger()
    l.record(A, B, 'like', uri(A, '1'))
    l.record(A, B, 'reply', uri(A, '2'))
    l.record(A, C, 'quote', uri(A, '2'))
    l.record(B, A, 'repost', uri(B, '3'))
    l.record(C, C, 'like', uri(C, '4'))
    expect(l.selfInteractions).toBe(1)
    expect(l.created).toBe(4)

    l.undo(uri(A, '2')) // the post that replied to B and quoted C
    expect(Object.fromEntries(l.partnersOf(A))).toEqual({
      [B]: {
        sent: { like: 1, repost: 0, reply: 0, quote: 0 },
        received: { like: 0, repost: 1, reply: 0, quote: 0 },
      },
    })
    expect(l.partnersOf(C).size).toBe(0)
    expect(() => l.undo(uri(A, '2'))).toThrow(/never saw/)
    l.undo(uri(C, '4')) // a self-interaction's record is known, though it counts nowhere

    l.deleteAccount(B)
    expect(l.partnersOf(A).size).toBe(0)
    expect(l.totals()).toEqual({ like: 0, repost: 0, reply: 0, quote: 0 })
    expect(l.coverage().undone).toEqual({ like: 1, repost: 1, reply: 1, quote: 1 })
  })

  it('weighs the chosen direction', () => {
    const t = {
      sent: { like: 1, repost: 0, reply: 2, quote: 0 },
      received: { like: 0, repost: 1, reply: 0, quote: 1 },
    }
    const w = { like: 1, repost: 2, reply: 3, quote: 3 }
    expect(weightedScore(t, w, 'sent')).toBe(7)
    expect(weightedScore(t, w, 'received')).toBe(5)
    expect(weightedScore(t, w, 'both')).toBe(12)
  })
})
