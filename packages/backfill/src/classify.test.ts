import { DAY_MS, HOUR_MS } from '@circles/core'
import { kindIndex } from '@circles/long-term'
import { describe, expect, it } from 'vitest'
import { like, quote, reply, repost, tidAt } from '../test/records.js'
import { classifyRecords } from './classify.js'

const A = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
const B = 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb'
const C = 'did:plc:cccccccccccccccccccccccc'

describe('classifyRecords', () => {
  const now = Date.now()
  const base = { did: A, now, retentionDays: 90 }

  it('sends the last 46 hours to the live index and older days to the day blobs', () => {
    const c = classifyRecords(
      [like(B, now - HOUR_MS), reply(B, now - 45 * HOUR_MS), like(B, now - 3 * DAY_MS)],
      { ...base, liveSince: null },
    )
    expect(c.live.map((e) => e.kind)).toEqual(['like', 'reply'])
    const day = Math.floor((now - 3 * DAY_MS) / DAY_MS)
    expect(c.days.get(B)).toEqual(new Map([[day * 4 + kindIndex('like'), 1]]))
    expect(c.dayEvents).toBe(1)
  })

  it('leaves older hours from the live-since mark on to the stream, and counts them', () => {
    const since = now - 10 * DAY_MS
    const c = classifyRecords(
      [repost(B, now - 5 * DAY_MS), quote(C, now - 20 * DAY_MS), like(C, now - 20 * DAY_MS)],
      { ...base, liveSince: since },
    )
    expect(c.liveCovered).toBe(1)
    expect([...(c.days.get(C)?.values() ?? [])].reduce((a, b) => a + b, 0)).toBe(2)
    expect(c.days.has(B)).toBe(false)
  })

  it('drops what is past the retention or in the future, self-interactions and malformed records', () => {
    const bad = { collection: 'app.bsky.feed.like', rkey: tidAt(now), record: { subject: 42 } }
    const c = classifyRecords(
      [
        like(B, now - 91 * DAY_MS),
        like(B, now + DAY_MS),
        like(A, now - HOUR_MS),
        bad,
        { collection: 'app.bsky.feed.like', rkey: 'self', record: { subject: {} } },
      ],
      { ...base, liveSince: null },
    )
    expect(c.outOfRange).toBe(2)
    expect(c.self).toBe(1)
    expect(c.rejected.invalid_subject).toBe(1)
    expect(c.untimed).toBe(1) // not a TID and no createdAt
    expect(c.live).toEqual([])
    expect(c.records).toBe(5)
  })

  it('times a record as the live path does: its TID when near its createdAt, else the createdAt', () => {
    const t = now - 2 * HOUR_MS
    const near = like(B, t, tidAt(t + 60_000))
    const far = like(B, t, tidAt(t - 5 * DAY_MS)) // a key made days before the record says it was
    const c = classifyRecords([near, far], { ...base, liveSince: null })
    expect(c.live.map((e) => e.time)).toEqual([t + 60_000, t])
  })
})
