import { describe, expect, it } from 'vitest'
import { splitPath, timeOf } from './frame-result.js'

describe('timeOf', () => {
  it('agrees with Date.parse on the relay format and its neighbours', () => {
    const cases = [
      '2026-11-01T00:00:00Z',
      '2026-11-01T00:00:00.1Z',
      '2026-11-01T23:59:59.999Z',
      '2026-11-01T12:34:56.123456Z',
      '2026-11-01T12:34:56.123456789Z',
      '2024-02-29T10:00:00.000Z',
      '2026-02-30T10:00:00.000Z',
      '2026-04-31T10:00:00.000Z',
      '2026-12-31T23:59:59.5Z',
      '1970-01-01T00:00:00.000Z',
      '0050-01-01T00:00:00.000Z',
      '2026-11-01T24:00:00.000Z',
      '2026-13-01T00:00:00.000Z',
      '2026-11-01T00:00:00.Z',
      '2026-11-01T00:00:00+02:00',
      '2026-11-01 00:00:00Z',
      '2026-11-01',
    ]
    for (const s of cases) {
      const parsed = Date.parse(s)
      expect([s, timeOf(s, -1)]).toEqual([s, Number.isFinite(parsed) ? parsed : -1])
    }
  })

  it('falls back for non-strings and garbage', () => {
    expect(timeOf(undefined, 7)).toBe(7)
    expect(timeOf(12345, 7)).toBe(7)
    expect(timeOf('yesterday', 7)).toBe(7)
  })
})

describe('splitPath', () => {
  it('splits at the first slash; no slash gives an empty rkey', () => {
    expect(splitPath('app.bsky.feed.like/3k2a')).toEqual(['app.bsky.feed.like', '3k2a'])
    expect(splitPath('app.bsky.feed.like/a/b')).toEqual(['app.bsky.feed.like', 'a/b'])
    expect(splitPath('app.bsky.feed.like')).toEqual(['app.bsky.feed.like', ''])
  })
})
