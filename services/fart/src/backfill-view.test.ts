import { describe, expect, it } from 'vitest'
import {
  backfillView,
  etagWithBackfill,
  isStaleMark,
  MARK_PATTERN,
  withBackfill,
} from './backfill-view.js'

describe('backfill view', () => {
  it('marks a done state with its time, anything else as pending', () => {
    expect(backfillView({})).toEqual({ state: { state: 'none', progress: 0 }, mark: 'p' })
    expect(backfillView({ state: 'running', done: '1', total: '4' }).mark).toBe('p')
    expect(backfillView({ state: 'failed', reason: 'timeout' }).mark).toBe('p')
    expect(backfillView({ state: 'done', at: '1700000000000' })).toEqual({
      state: { state: 'done', progress: 1 },
      mark: 'd1700000000000',
    })
    // A time that is not one is left out, never copied into a cache entry's head.
    expect(backfillView({ state: 'done', at: '12\n3' }).mark).toBe('d')
    for (const m of ['p', 'd', 'd1700000000000']) expect(MARK_PATTERN.test(m)).toBe(true)
    for (const m of ['', 'x', 'd12a', '"abc"']) expect(MARK_PATTERN.test(m)).toBe(false)
  })

  it('finds a circle stale only when the backfill is done and the circle was made before', () => {
    const table: [entry: string, current: string, stale: boolean][] = [
      ['p', 'p', false],
      ['d5', 'p', false], // queued again by an admin: the circle made after the last run still stands
      ['p', 'd5', true],
      ['d4', 'd5', true],
      ['d5', 'd5', false],
    ]
    for (const [entry, current, stale] of table) {
      expect(isStaleMark(entry, current), `${entry} under ${current}`).toBe(stale)
    }
  })

  it('appends the state to the JSON body and tags the ETag with it', () => {
    const body = Buffer.from(JSON.stringify({ actor: { did: 'x' }, rings: [] }))
    const state = { state: 'failed' as const, progress: 0.5, reason: 'too-large' }
    expect(JSON.parse(withBackfill(body, state).toString())).toEqual({
      actor: { did: 'x' },
      rings: [],
      backfill: state,
    })
    expect(JSON.parse(withBackfill(Buffer.from('{}'), state).toString())).toEqual({
      backfill: state,
    })
    expect(withBackfill(Buffer.from('[1]'), state).toString()).toBe('[1]')
    const etag = '"abc"'
    expect(etagWithBackfill(etag, { state: 'none', progress: 0 })).toBe(etag)
    const tags = [
      etagWithBackfill(etag, { state: 'queued', progress: 0 }),
      etagWithBackfill(etag, { state: 'running', progress: 0.25 }),
      etagWithBackfill(etag, { state: 'running', progress: 0.5 }),
      etagWithBackfill(etag, { state: 'done', progress: 1 }),
      etagWithBackfill(etag, state),
      etagWithBackfill(etag, { ...state, reason: 'timeout' }),
    ]
    expect(tags[1]).toBe('"abc.r250"')
    expect(new Set([etag, ...tags]).size).toBe(7)
    for (const t of tags) expect(t).toMatch(/^"abc\.[A-Za-z0-9_-]+"$/)
  })
})
