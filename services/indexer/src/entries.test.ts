import { encodeEvents, eventAt } from '@circles/core'
import { describe, expect, it } from 'vitest'
import { decodeEntries } from './entries.js'

const A = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz'
const B = 'did:plc:z72i7hdynmk6r22z27h6tvur'

describe('decodeEntries', () => {
  it('skips bad lines and entries without an e field, keeping the rest in order', () => {
    const good = encodeEvents([
      {
        type: 'create',
        kind: 'like',
        author: A,
        subject: B,
        rkey: '3l3qo2vutsw2b',
        time: 1,
        chars: 0,
      },
      { type: 'delete', record: 'like', author: A, rkey: '3l3qo2vutsw2b', time: 2 },
    ])
    const b = (s: string) => Buffer.from(s)
    const batch = decodeEntries([
      [b('1-0'), [b('e'), b(`${good}\nc\tz\tbad`)]],
      [b('2-0'), [b('x'), b('y')]],
      [b('3-0'), [b('e'), b('')]],
      [b('4-0'), [b('ee'), b(good)]],
    ])
    expect(batch.ids.map(String)).toEqual(['1-0', '2-0', '3-0', '4-0'])
    const events = Array.from({ length: batch.events.length }, (_, i) => eventAt(batch.events, i))
    expect(events.map((e) => e.type)).toEqual(['create', 'delete'])
    expect(batch).toMatchObject({ badLines: 1, badEntries: 2 })
    // poison: the entry with a bad line (its good lines applied) and the ones without an `e` field
    expect(batch.poison.map((p) => [String(p.id), p.error])).toEqual([
      ['2-0', 'entry has no `e` field'],
      ['4-0', 'entry has no `e` field'],
      [
        '1-0',
        '1 of 3 event lines do not decode (the other 2 were applied); first: malformed event line: "c\\tz\\tbad"',
      ],
    ])
    expect(batch.poison[2]?.fields.map(String)).toEqual(['e', `${good}\nc\tz\tbad`])
    expect(batch.lost).toEqual([])
  })

  it("skips the bot's mention entries (field m) without counting them bad, and acknowledges them", () => {
    const b = (s: string) => Buffer.from(s)
    const batch = decodeEntries([[b('5-0'), [b('m'), b('any\tmention\tline')]]])
    expect(batch.ids.map(String)).toEqual(['5-0'])
    expect(batch.events.length).toBe(0)
    expect(batch).toMatchObject({ badLines: 0, badEntries: 0, poison: [], lost: [] })
  })

  it('lists entries deleted while pending as lost, and decodes the rest', () => {
    const b = (s: string) => Buffer.from(s)
    const line = encodeEvents([{ type: 'identity', did: A, handle: null, time: 5 }])
    const batch = decodeEntries([
      [b('1-0'), null],
      [b('2-0'), [b('e'), b(line)]],
    ])
    expect(batch.ids.map(String)).toEqual(['1-0', '2-0'])
    expect(batch.lost.map(String)).toEqual(['1-0'])
    expect(batch.poison).toEqual([])
    expect(batch.events.length).toBe(1)
  })
})
