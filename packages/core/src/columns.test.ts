import { describe, expect, it } from 'vitest'
import { decodeEvent } from './codec.js'
import { columnsOf, decodeColumns, eventAt } from './columns.js'
import type { StreamEvent } from './interaction.js'

const A = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz'
const B = 'did:plc:z72i7hdynmk6r22z27h6tvur'

describe('decodeColumns', () => {
  it('decodes exactly what decodeEvent decodes, line for line, bad lines included', () => {
    const lines = [
      `c\tl\t${A}\t3l3qo2vutsw2b\t${B}\t1732000000000\t0`,
      `c\tq\t${A}\t3l3qo2vutsw2b\t${B}\t5\t280`,
      `c\tp\t${A}\tself\t${B}\t0\t12`,
      `d\tp\t${A}\t3l3qo2vutsw2b\t1732000000001`,
      `d\tl\t${A}\t3l3qo2vutsw2b\t7`,
      `i\t${A}\talice.test\t3`,
      `a\t${A}\t0\tdeleted\t4`,
      // odd but valid for decodeEvent (goes the slow way), and invalid ones
      `c\tl\t${A}\tr\t${B}\t1e3\t0`,
      `c\tl\t${A}\tr\t${B}\t12345678901234567\t0`,
      `c\tl\t${A}\tr\t${B}\t-1\t0`,
      `c\tl\t${A}\tr\t${B}\t1\t`,
      `c\tl\t${A}\t\t${B}\t1\t0`,
      `c\tl\t${A}\tr\t${B}\t1\t0\textra`,
      `c\tx\t${A}\tr\t${B}\t1\t0`,
      `d\tq\t${A}\tr\t1`,
      `d\tl\t${A}\tr`,
      `d\tl\t${A}\tr\t1\t2`,
      'c',
      '',
      'c\tl',
    ]
    const expected: unknown[] = []
    let bad = 0
    for (const line of lines) {
      try {
        expected.push(decodeEvent(line))
      } catch {
        bad++
      }
    }
    // split over two entries, one line cut at the boundary of neither
    const cut = 9
    const cols = decodeColumns([
      Buffer.from(lines.slice(0, cut).join('\n')),
      Buffer.from(lines.slice(cut).join('\n')),
    ])
    expect(Array.from({ length: cols.length }, (_, i) => eventAt(cols, i))).toEqual(expected)
    expect(cols.badLines).toBe(bad)
    expect(expected.length).toBeGreaterThan(7)
  })
})

describe('columnsOf', () => {
  it('keeps every event, in order, as eventAt gives it back', () => {
    const events: StreamEvent[] = [
      {
        type: 'create',
        kind: 'reply',
        author: A,
        subject: B,
        rkey: '3l3qo2vutsw2b',
        time: 9,
        chars: 70000,
      },
      { type: 'identity', did: A, handle: 'älice.test', time: 2 },
      { type: 'delete', record: 'repost', author: B, rkey: 'a:b~c', time: 3 },
      { type: 'account', did: B, active: false, status: 'takendown', time: 4 },
      { type: 'create', kind: 'quote', author: B, subject: A, rkey: 'ümlaut', time: 5, chars: 1 },
    ]
    const cols = columnsOf(events)
    expect(cols.length).toBe(events.length)
    expect(Array.from({ length: cols.length }, (_, i) => eventAt(cols, i))).toEqual(events)
    expect(columnsOf([]).length).toBe(0)
  })
})
