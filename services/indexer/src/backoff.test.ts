import { describe, expect, it } from 'vitest'
import { backoffDelay } from './backoff.js'

describe('backoffDelay', () => {
  it('doubles from the first wait up to the longest, with up to half taken off at random', () => {
    const top = () => 0
    expect([1, 2, 3, 4, 5, 6, 7, 50].map((a) => backoffDelay(a, 100, 3000, top))).toEqual([
      100, 200, 400, 800, 1600, 3000, 3000, 3000,
    ])
    const bottom = () => 0.999999
    expect([1, 2, 6].map((a) => backoffDelay(a, 100, 3000, bottom))).toEqual([50, 100, 1500])
    expect(backoffDelay(1, 1, 10, bottom)).toBe(1)
  })
})
