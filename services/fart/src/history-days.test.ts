import { didId } from '@circles/interaction-index'
import { encodeDayBlob, kindIndex } from '@circles/long-term'
import { describe, expect, it } from 'vitest'
import { partnerAt, tallyDay, topSlots } from './history-days.js'

const id = (n: number) => didId(`did:plc:${String(n).padStart(24, 'a')}`)
const key = (n: number) => id(n).toString('latin1')

function blob(rows: [partner: number, kind: 'like' | 'reply' | 'quote', count: number][]) {
  return encodeDayBlob(
    0,
    rows.map(([p, k, count]) => ({ kind: kindIndex(k), partner: id(p), count })),
  )
}

describe('history days', () => {
  it('adds sides per direction and partner, counts over 63 included', () => {
    const t = tallyDay(7, [
      [
        's',
        blob([
          [1, 'like', 2],
          [2, 'reply', 100],
        ]),
      ],
      ['bs', blob([[1, 'like', 3]])],
      ['br', blob([[1, 'quote', 1]])],
    ])
    expect(t.size).toBe(2)
    expect(t.sent).toEqual({ like: 5, repost: 0, reply: 100, quote: 0 })
    expect(t.received).toEqual({ like: 0, repost: 0, reply: 0, quote: 1 })
    const one = partnerAt(t, topSlots(t, 2, new Set())[1] as number)
    expect(one).toEqual({
      id: key(1),
      sent: { like: 5, repost: 0, reply: 0, quote: 0 },
      received: { like: 0, repost: 0, reply: 0, quote: 1 },
    })
  })

  it('sums records of one partner that follow each other (as a roll-up writes them)', () => {
    const t = tallyDay(4, [
      [
        's',
        blob([
          [1, 'like', 2],
          [1, 'reply', 3],
          [1, 'like', 1],
        ]),
      ],
      ['r', blob([[1, 'quote', 4]])],
    ])
    expect(t.size).toBe(1)
    expect(partnerAt(t, 0).sent).toEqual({ like: 3, repost: 0, reply: 3, quote: 0 })
    expect(partnerAt(t, 0).received.quote).toBe(4)
    expect(t.totals[0]).toBe(10)
  })

  it('does not carry one day’s counts into the next (the scratch is shared)', () => {
    tallyDay(1, [['s', blob([[1, 'like', 9]])]])
    const t = tallyDay(2, [['r', blob([[1, 'like', 1]])]])
    expect(partnerAt(t, 0).sent.like).toBe(0)
    expect(partnerAt(t, 0).received.like).toBe(1)
  })

  it('picks the top n, most first, ties by id, skipping rejected ids', () => {
    const rows: [number, 'like', number][] = []
    for (let p = 1; p <= 50; p++) rows.push([p, 'like', (p % 10) + 1])
    const t = tallyDay(3, [['s', blob(rows)]])
    const top = (n: number, rejected: string[] = []) =>
      topSlots(t, n, new Set(rejected)).map((s) => t.idOf(s))
    const nines = [9, 19, 29, 39, 49].map(key).sort()
    expect(top(5)).toEqual(nines)
    expect(top(3, [nines[0] as string])).toEqual(nines.slice(1, 4))
    expect(top(0)).toEqual([])
    expect(top(100)).toHaveLength(50)
  })
})
