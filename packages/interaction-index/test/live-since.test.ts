import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LiveSinceMark, readLiveSince } from '../src/live-since.js'

let tr: TestRedis
beforeEach(async () => {
  tr = await createTestRedis('live-since')
})
afterEach(() => tr.cleanup())

describe('the live-since mark', () => {
  it('is absent until noted, then only goes down, across processes', async () => {
    const t = Date.now()
    expect(await readLiveSince(tr.redis, tr.schema)).toBeNull()
    const a = new LiveSinceMark(tr.redis, tr.schema)
    const b = new LiveSinceMark(tr.redis, tr.schema)
    await a.note(Number.POSITIVE_INFINITY) // a batch without creates marks nothing
    expect(await readLiveSince(tr.redis, tr.schema)).toBeNull()
    await a.note(t)
    await b.note(t + 5000) // another indexer, later events: the earlier mark stays
    expect(await readLiveSince(tr.redis, tr.schema)).toBe(t)
    await b.note(t - 1000) // an earlier event still (clock skew between PDSes): lowered
    expect(await readLiveSince(tr.redis, tr.schema)).toBe(t - 1000)
  })

  it('is written again after forget() when Redis lost it', async () => {
    const t = Date.now()
    const a = new LiveSinceMark(tr.redis, tr.schema)
    await a.note(t)
    await tr.redis.del(tr.schema.liveSince)
    await a.note(t + 10) // remembered as known: no write
    expect(await readLiveSince(tr.redis, tr.schema)).toBeNull()
    a.forget()
    await a.note(t + 10)
    expect(await readLiveSince(tr.redis, tr.schema)).toBe(t + 10)
  })
})
