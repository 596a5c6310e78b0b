import { describe, expect, it } from 'vitest'
import { kthLargest } from './reader.js'

describe('kthLargest', () => {
  it('agrees with sorting, ties and all', () => {
    let seed = 1
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed / 2147483648
    }
    for (const n of [1, 2, 3, 10, 100, 5000]) {
      // few distinct values (many ties, as with interaction counts), then all distinct
      for (const distinct of [3, 1e9]) {
        const values = Float64Array.from({ length: n }, () => Math.floor(rand() * distinct))
        const sorted = values.slice().sort()
        for (const k of [1, 2, Math.ceil(n / 2), n]) {
          if (k > n) continue
          expect(kthLargest(values, k)).toBe(sorted[n - k])
        }
      }
    }
  })

  it('leaves its input alone', () => {
    const values = Float64Array.from([3, 1, 2])
    kthLargest(values, 2)
    expect([...values]).toEqual([3, 1, 2])
  })
})
