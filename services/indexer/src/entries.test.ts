import { decodeEvent, encodeEvents } from '@circles/core'
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
    const batch = decodeEntries([
      ['1-0', ['e', `${good}\nc\tz\tbad`]],
      ['2-0', ['x', 'y']],
      ['3-0', ['e', '']],
    ])
    expect(batch.ids).toEqual(['1-0', '2-0', '3-0'])
    expect(batch.events.map((e) => e.type)).toEqual(['create', 'delete'])
    expect(batch).toMatchObject({ badLines: 1, badEntries: 1 })
  })
})

describe('decodeEntries fast path', () => {
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
    const batch = decodeEntries([['1-0', ['e', lines.join('\n')]]])
    expect(batch.events).toEqual(expected)
    expect(batch.badLines).toBe(bad)
    expect(expected.length).toBeGreaterThan(7)
  })
})
