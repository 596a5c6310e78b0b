import { HOUR_MS, type StreamEvent, tidFromMs } from '@circles/core'
import { createTestRedis, didOf, prng, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createIndexReader, createIndexWriter, type Partner } from '../src/index.js'

// The list's pages order only the partners a page can reach (those totalling at least the k-th largest
// total): paged through at any size they give what one page of everything gives, ties and all.

const NOW = Date.now()
const CURRENT = Math.floor(NOW / HOUR_MS)
const KINDS = ['like', 'repost', 'reply', 'quote'] as const

describe('partners pages', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('partners-page')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  it('pages of any size add up to the whole list, in its order', async () => {
    const { redis, schema } = t
    const r = prng(5)
    const me = didOf(3)
    const pool = Array.from({ length: 120 }, (_, i) => didOf(500 + i))
    const events: StreamEvent[] = []
    for (let j = 0; j < 700; j++) {
      const time = (CURRENT - Math.floor(r() * 47)) * HOUR_MS + j * 1000
      // Skewed: a few partners often, most once or twice (many equal totals).
      const other = pool[Math.floor(r() * r() * pool.length)] as string
      const [author, subject] = r() < 0.5 ? [me, other] : [other, me]
      const kind = KINDS[Math.floor(r() * 4)] as (typeof KINDS)[number]
      events.push({
        type: 'create',
        kind,
        author,
        subject,
        rkey: tidFromMs(time, j),
        time,
        chars: 0,
      })
    }
    await createIndexWriter(redis, schema).apply(events)
    const reader = createIndexReader(redis, schema, { now: () => NOW })
    const whole = await reader.partners({ did: me, windowHours: 48, limit: 100_000 })
    expect(whole.cursor).toBeUndefined()
    expect(whole.partners.length).toBeGreaterThan(60)
    for (const limit of [1, 2, 7, 50, whole.partners.length - 1]) {
      const got: Partner[] = []
      let cursor: string | undefined
      do {
        const page = await reader.partners({ did: me, windowHours: 48, limit, cursor })
        expect(page.partners.length).toBeLessThanOrEqual(limit)
        got.push(...page.partners)
        cursor = page.cursor
      } while (cursor !== undefined)
      expect(got).toEqual(whole.partners)
    }
  })
})
