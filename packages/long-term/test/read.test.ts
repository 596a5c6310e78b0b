import { dayOf } from '@circles/core'
import { didId, rememberDids } from '@circles/interaction-index'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { encodeDayBlob, kindIndex, markOfHour, mergeDayBlob, readLongTerm } from '../src/index.js'

// The reader against the real Redis: day blobs of one hash summed over a range of days, partner ids
// resolved to DIDs through the index's DID table, ids the table does not know left out.

const A = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
const B = 'did:web:b.example.com'
const GONE = 'did:plc:gggggggggggggggggggggggg'
const TODAY = dayOf(Date.now())

describe('readLongTerm', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('long-term')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  it('sums the days asked for by partner and resolves them through the DID table', async () => {
    const { redis, schema } = t
    const key = schema.longTerm('did:plc:cccccccccccccccccccccccc', 's')
    const rec = (did: string, kind: 'like' | 'reply', count: number) => ({
      kind: kindIndex(kind),
      partner: didId(did),
      count,
    })
    // GONE's entry is not in the table (forgotten): its records are left out of what is read
    await rememberDids(redis, schema, [A, B])
    const twoHours = mergeDayBlob(
      encodeDayBlob(markOfHour(TODAY * 24 + 1), [rec(A, 'like', 2), rec(GONE, 'like', 9)]),
      markOfHour(TODAY * 24 + 2),
      [rec(A, 'like', 100), rec(B, 'reply', 1)],
    )
    await redis.hset(key, {
      [TODAY - 40]: encodeDayBlob(24, [rec(A, 'like', 1000)]),
      [TODAY - 3]: encodeDayBlob(24, [rec(A, 'reply', 5)]),
      [TODAY]: twoHours,
    })
    const read = await readLongTerm(redis, schema, key, TODAY - 30, TODAY)
    expect(new Map([...read].sort())).toEqual(
      new Map([
        [A, { like: 102, repost: 0, reply: 5, quote: 0 }],
        [B, { like: 0, repost: 0, reply: 1, quote: 0 }],
      ]),
    )
    expect(await readLongTerm(redis, schema, key, TODAY - 40, TODAY - 40)).toEqual(
      new Map([[A, { like: 1000, repost: 0, reply: 0, quote: 0 }]]),
    )
    expect(await readLongTerm(redis, schema, schema.longTerm(B, 'r'), TODAY - 30, TODAY)).toEqual(
      new Map(),
    )
  })
})
