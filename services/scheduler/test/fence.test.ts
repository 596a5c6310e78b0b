import { HOUR_MS } from '@circles/core'
import {
  createIndexReader,
  createIndexWriter,
  HOUR_AUTHOR_SHARDS,
} from '@circles/interaction-index'
import { keySlot } from '@circles/redis-wire'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createRollupFence, FencedOutError } from '../src/fence.js'
import { createLiveHours } from '../src/live-index.js'
import { makeDids, makeEvents } from './helpers.js'

// The fence as the roll-up uses it: one fence key per cluster slot, claimed by each new lock holder, and
// checked by every write in the written key's own slot.

const CURRENT = Math.floor(Date.now() / HOUR_MS)

/** Keys matching a pattern, by SCAN (the Redis is shared: no KEYS). */
async function scanKeys(t: TestRedis, pattern: string): Promise<string[]> {
  const out: string[] = []
  let cursor = '0'
  do {
    const [next, page] = await t.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 2000)
    cursor = next
    out.push(...page)
  } while (cursor !== '0')
  return out
}

describe('roll-up fence', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('sched-fence')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  it('puts the fence of every key the roll-up writes in that key’s slot, one fence key per slot', async () => {
    const fence = createRollupFence(t.redis, t.schema, 1)
    const keys = [
      t.schema.rollupCursor,
      t.schema.indexHours,
      ...Array.from({ length: HOUR_AUTHOR_SHARDS }, (_, s) => t.schema.hourAuthors(CURRENT, s)),
      ...makeDids(50, 3).flatMap((d) => [t.schema.longTerm(d, 's'), t.schema.longTerm(d, 'r')]),
    ]
    for (const key of keys) expect(keySlot(fence.keyFor(key))).toBe(keySlot(key))
    await fence.claim()
    const claimed = await scanKeys(t, t.schema.rollupFencePattern)
    expect(claimed.length).toBe(16384)
    expect(new Set(claimed.map(keySlot)).size).toBe(16384)
  })

  it('a holder replaced by a newer one is refused at its next write, and cannot claim again', async () => {
    const old = createRollupFence(t.redis, t.schema, 1)
    expect(await old.moveCursor(CURRENT - 60)).toBe(true)
    const next = createRollupFence(t.redis, t.schema, 2)
    await next.claim()
    await expect(old.moveCursor(CURRENT - 59)).rejects.toBeInstanceOf(FencedOutError)
    await expect(old.free([{ key: t.schema.hourAuthors(CURRENT - 60, 0) }])).rejects.toThrow(
      FencedOutError,
    )
    const late = createRollupFence(t.redis, t.schema, 1)
    await expect(late.claim()).rejects.toBeInstanceOf(FencedOutError)
    expect(await next.moveCursor(CURRENT - 59)).toBe(true)
    expect(await t.redis.get(t.schema.rollupCursor)).toBe(String(CURRENT - 59))
  })

  it('the fenced free of an hour removes what the index reader’s dropHour removes', async () => {
    const hours = [CURRENT - 3, CURRENT - 2]
    const { events } = makeEvents(makeDids(60, 4), hours, 300)
    const other = await createTestRedis('sched-fence-drop')
    try {
      await createIndexWriter(t.redis, t.schema).apply(events)
      await createIndexWriter(other.redis, other.schema).apply(events)
      const fence = createRollupFence(t.redis, t.schema, 1)
      await createLiveHours(t.redis, t.schema).freeHour(hours[0] as number, fence)
      await createIndexReader(other.redis, other.schema).dropHour(hours[0] as number)
      const names = async (r: TestRedis) => {
        const fences = new Set(await scanKeys(r, r.schema.rollupFencePattern))
        const all = await scanKeys(r, r.schema.all)
        return all
          .filter((k) => !fences.has(k))
          .map((k) => k.slice(r.prefix.length))
          .sort()
      }
      expect(await names(t)).toEqual(await names(other))
      expect(await t.redis.smembers(t.schema.indexHours)).toEqual([String(hours[1])])
    } finally {
      await other.cleanup()
    }
  })
})
