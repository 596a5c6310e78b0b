import { describe, expect, it } from 'vitest'
import { CodecError, decodeEvent, decodeEvents, encodeEvents } from './codec.js'
import type { StreamEvent } from './interaction.js'

const A = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz'
const B = 'did:web:bob.example.com'

describe('codec', () => {
  it('round-trips every event type', () => {
    const events: StreamEvent[] = [
      {
        type: 'create',
        kind: 'like',
        author: A,
        subject: B,
        rkey: '3l3qo2vutsw2b',
        time: 1_763_000_000_000,
        chars: 0,
      },
      {
        type: 'create',
        kind: 'reply',
        author: A,
        subject: B,
        rkey: '3l3qo2vutsw2c',
        time: 1,
        chars: 280,
      },
      { type: 'create', kind: 'quote', author: A, subject: B, rkey: 'self', time: 2, chars: 3 },
      { type: 'create', kind: 'repost', author: A, subject: B, rkey: 'x', time: 2, chars: 0 },
      { type: 'block', action: 'create', author: A, rkey: '3l3qo2vutsw2d', time: 3 },
      { type: 'block', action: 'delete', author: B, rkey: '3l3qo2vutsw2d', time: 4 },
      { type: 'label', did: A, on: true, time: 5 },
      { type: 'label', did: B, on: false, time: 6 },
      { type: 'delete', record: 'post', author: A, rkey: '3l3qo2vutsw2b', time: 3 },
      { type: 'identity', did: A, handle: 'alice.test', time: 4 },
      { type: 'identity', did: A, handle: null, time: 5 },
      { type: 'account', did: B, active: false, status: 'takendown', time: 6 },
      { type: 'account', did: B, active: true, status: null, time: 7 },
    ]
    expect(decodeEvents(encodeEvents(events))).toEqual(events)
    expect(decodeEvents('')).toEqual([])
  })

  it.each([
    'x\ty',
    'c\tz\ta\tb\tc\t1\t0',
    'c\tl\ta\tb\tc\t1',
    'c\tl\ta\tb\tc\t-1\t0',
    'c\tl\ta\tb\tc\t1.5\t0',
    'd\tl\ta\tb',
    'a\tdid\t2\t-\t1',
    'i\tdid\t\t1',
  ])('rejects %j', (line) => {
    expect(() => decodeEvent(line)).toThrow(CodecError)
  })
})
