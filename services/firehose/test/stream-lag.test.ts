import { groupInfo } from '@circles/stream-info'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { combineLags, ensureGroup, healGroupCounter, readLag, trimRead } from '../src/stream-lag.js'
import { type TestRedis, testRedis } from './helpers.js'

let t: TestRedis

beforeEach(async () => {
  t = await testRedis()
})
afterEach(async () => {
  await t.cleanup()
})

async function add(n: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++)
    ids.push((await t.redis.xadd(t.schema.eventStream, '*', 'e', `x${i}`)) as string)
  return ids
}

async function readGroup(count: number): Promise<string[]> {
  const res = (await t.redis.xreadgroup(
    'GROUP',
    t.schema.indexerGroup,
    'c',
    'COUNT',
    count,
    'STREAMS',
    t.schema.eventStream,
    '>',
  )) as [string, [string, string[]][]][] | null
  return (res?.[0]?.[1] ?? []).map(([id]) => id)
}

describe('indexer lag', () => {
  it('counts the whole stream when the group is missing, and creates the group once', async () => {
    expect(await readLag(t.redis, t.schema)).toMatchObject({ lag: 0, source: 'no-group' })
    await add(5)
    expect(await readLag(t.redis, t.schema)).toMatchObject({ lag: 5, source: 'no-group' })
    expect(await ensureGroup(t.redis, t.schema)).toBe(true)
    expect(await ensureGroup(t.redis, t.schema)).toBe(false)
    expect(await readLag(t.redis, t.schema)).toMatchObject({ lag: 5, source: 'lag', length: 5 })
  })

  it("falls back to entries-added minus entries-read when Redis's lag is unknown", async () => {
    await ensureGroup(t.redis, t.schema)
    const ids = await add(10)
    await readGroup(3)
    // A deletion inside the unread range makes Redis report lag as null.
    await t.redis.xdel(t.schema.eventStream, ids[6] as string)
    const group = await groupInfo(t.redis, t.schema.eventStream, t.schema.indexerGroup)
    expect(group?.lag).toBeNull()
    expect(await readLag(t.redis, t.schema)).toMatchObject({ lag: 7, source: 'entries-read' })
  })

  it('sets a wrong entries-read counter right once the group has read the whole stream', async () => {
    await ensureGroup(t.redis, t.schema)
    const ids = await add(10)
    await readGroup(4)
    // What a replica promoted by a failover holds under Redis 7.0 (lua/heal-group-counter.lua): the
    // counter of its last full sync, here 1 where 4 entries were read.
    const { eventStream, indexerGroup } = t.schema
    await t.redis.xgroup('SETID', eventStream, indexerGroup, ids[3] as string, 'ENTRIESREAD', 1)
    expect((await readLag(t.redis, t.schema)).lag).toBe(9)
    // mid-stream the right value is not known: left alone
    expect(await healGroupCounter(t.redis, t.schema)).toBe(false)
    await readGroup(6)
    // everything delivered, and Redis still says 3: the firehose would stay paused on it
    expect((await readLag(t.redis, t.schema)).lag).toBe(3)
    expect(await healGroupCounter(t.redis, t.schema)).toBe(true)
    expect(await readLag(t.redis, t.schema)).toMatchObject({ lag: 0, source: 'lag', pending: 10 })
    await add(2)
    expect((await readLag(t.redis, t.schema)).lag).toBe(2)
    expect(await healGroupCounter(t.redis, t.schema)).toBe(false)
    await readGroup(2)
    expect(await healGroupCounter(t.redis, t.schema)).toBe(false)
    expect((await readLag(t.redis, t.schema)).lag).toBe(0)
  })

  it('counts entries trimmed away before the group read them', async () => {
    await ensureGroup(t.redis, t.schema)
    await add(10)
    await readGroup(2)
    expect(await readLag(t.redis, t.schema)).toMatchObject({ lag: 8, trimmedUnread: 0 })
    // MAXLEN takes the oldest first: the 2 read entries, then 3 the group never saw
    await t.redis.xtrim(t.schema.eventStream, 'MAXLEN', 5)
    expect(await readLag(t.redis, t.schema)).toMatchObject({ lag: 8, length: 5, trimmedUnread: 3 })
  })

  it('trims only what the group read and acknowledged', async () => {
    await ensureGroup(t.redis, t.schema)
    const ids = await add(300)
    const read = await readGroup(250)
    // Acknowledge the first 200; 50 stay pending, 50 were never delivered.
    await t.redis.xack(t.schema.eventStream, t.schema.indexerGroup, ...read.slice(0, 200))
    await trimRead(t.redis, t.schema)
    const left = (await t.redis.xrange(t.schema.eventStream, '-', '+')).map(([id]) => id)
    // Exactly what was acknowledged below the oldest pending entry; never a pending or unread one.
    expect(left).toEqual(ids.slice(200))
    // Everything delivered acknowledged: the trim takes the last delivered entry too, and nothing past it.
    await t.redis.xack(t.schema.eventStream, t.schema.indexerGroup, ...read.slice(200))
    await trimRead(t.redis, t.schema)
    const after = (await t.redis.xrange(t.schema.eventStream, '-', '+')).map(([id]) => id)
    expect(after).toEqual(ids.slice(250))
  })

  it("keeps what the bot's group has not acknowledged, pending or unread", async () => {
    await ensureGroup(t.redis, t.schema)
    const ids = await add(100)
    await t.redis.xgroup('CREATE', t.schema.eventStream, t.schema.botGroup, '0')
    const read = await readGroup(100)
    await t.redis.xack(t.schema.eventStream, t.schema.indexerGroup, ...read)
    // The bot read nothing yet: nothing goes.
    await trimRead(t.redis, t.schema)
    expect(await t.redis.xlen(t.schema.eventStream)).toBe(100)
    // The bot read 60, acknowledged 40: the 40 go, its 20 pending and 40 unread stay.
    const botRead = (await t.redis.xreadgroup(
      'GROUP',
      t.schema.botGroup,
      'b',
      'COUNT',
      60,
      'STREAMS',
      t.schema.eventStream,
      '>',
    )) as [string, [string, string[]][]][]
    const botIds = (botRead[0]?.[1] ?? []).map(([id]) => id)
    await t.redis.xack(t.schema.eventStream, t.schema.botGroup, ...botIds.slice(0, 40))
    await trimRead(t.redis, t.schema)
    const left = (await t.redis.xrange(t.schema.eventStream, '-', '+')).map(([id]) => id)
    expect(left).toEqual(ids.slice(40))
  })
})

describe('combineLags', () => {
  it('takes the highest lag (backpressure is per stream) and sums the rest', () => {
    const reading = (lag: number, length: number, trimmedUnread = 0) => ({
      lag,
      source: 'lag' as const,
      length,
      lastDeliveredId: null,
      pending: 0,
      trimmedUnread,
    })
    expect(combineLags([reading(3, 10), reading(7, 20, 2)])).toEqual({
      lag: 7,
      total: 10,
      length: 30,
      trimmedUnread: 2,
    })
  })
})
