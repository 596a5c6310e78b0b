import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { groupInfo, parseConsumers, parseGroups, readGroups } from '../src/index.js'

// Real XINFO GROUPS replies from the real Redis (7: with entries-read and lag), under a private prefix.

let t: TestRedis
let stream: string
beforeEach(async () => {
  t = await createTestRedis('stream-info')
  stream = t.schema.eventStream
})
afterEach(async () => {
  await t.cleanup()
})

async function add(n: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) ids.push((await t.redis.xadd(stream, '*', 'n', String(i))) as string)
  return ids
}

async function read(group: string, consumer: string, n: number): Promise<string[]> {
  const reply = (await t.redis.xreadgroup(
    'GROUP',
    group,
    consumer,
    'COUNT',
    n,
    'STREAMS',
    stream,
    '>',
  )) as [string, [string, string[]][]][] | null
  return (reply?.[0]?.[1] ?? []).map(([id]) => id)
}

describe('parseGroups', () => {
  it('reads every field of a group that has read, acknowledged and fallen behind', async () => {
    await t.redis.xgroup('CREATE', stream, 'indexer', '0', 'MKSTREAM')
    const ids = await add(5)
    const got = await read('indexer', 'a', 3)
    expect(got).toEqual(ids.slice(0, 3))
    await t.redis.xack(stream, 'indexer', ids[0] as string)
    const reply = await t.redis.xinfo('GROUPS', stream)
    expect(parseGroups(reply)).toEqual([
      {
        name: 'indexer',
        consumers: 1,
        pending: 2,
        lastDeliveredId: ids[2],
        entriesRead: 3,
        lag: 2,
      },
    ])
  })

  it('gives several groups in Redis order, a fresh one at 0-0 with nothing read', async () => {
    await add(2)
    await t.redis.xgroup('CREATE', stream, 'first', '0')
    await t.redis.xgroup('CREATE', stream, 'second', '0')
    await read('second', 'b', 1)
    const groups = parseGroups(await t.redis.xinfo('GROUPS', stream))
    expect(groups.map((g) => g.name)).toEqual(['first', 'second'])
    expect(groups[0]).toMatchObject({
      consumers: 0,
      pending: 0,
      lastDeliveredId: '0-0',
      lag: 2,
    })
    expect(groups[1]).toMatchObject({ consumers: 1, pending: 1, entriesRead: 1, lag: 1 })
  })

  it('a lag Redis cannot tell (a deletion inside the unread range) comes out null, not 0', async () => {
    await t.redis.xgroup('CREATE', stream, 'indexer', '0', 'MKSTREAM')
    const ids = await add(10)
    await read('indexer', 'a', 3)
    await t.redis.xdel(stream, ids[6] as string)
    const reply = (await t.redis.xinfo('GROUPS', stream)) as unknown[][]
    // the raw reply: `lag` is a RESP nil
    expect(reply[0]?.[(reply[0] as unknown[]).indexOf('lag') + 1]).toBeNull()
    expect(parseGroups(reply)[0]).toMatchObject({ entriesRead: 3, lag: null, pending: 3 })
  })

  it('takes buffers as well as strings (callBuffer), and a reply without the Redis 7 fields', async () => {
    await t.redis.xgroup('CREATE', stream, 'indexer', '0', 'MKSTREAM')
    await add(1)
    const asBuffers = await t.redis.callBuffer('XINFO', 'GROUPS', stream)
    expect(parseGroups(asBuffers)).toEqual(parseGroups(await t.redis.xinfo('GROUPS', stream)))
    // Redis 6 answers without entries-read and lag
    const redis6 = [['name', 'g', 'consumers', 2, 'pending', 4, 'last-delivered-id', '7-1']]
    expect(parseGroups(redis6)).toEqual([
      { name: 'g', consumers: 2, pending: 4, lastDeliveredId: '7-1', entriesRead: null, lag: null },
    ])
  })

  it('anything but a list of groups is no groups', () => {
    expect(parseGroups(null)).toEqual([])
    expect(parseGroups('ERR')).toEqual([])
    expect(parseGroups([])).toEqual([])
  })
})

describe('readGroups and groupInfo', () => {
  it('a missing stream has no groups; a missing group is undefined', async () => {
    expect(await readGroups(t.redis, stream)).toEqual([])
    expect(await groupInfo(t.redis, stream, 'indexer')).toBeUndefined()
    await t.redis.xgroup('CREATE', stream, 'other', '$', 'MKSTREAM')
    expect(await groupInfo(t.redis, stream, 'indexer')).toBeUndefined()
    expect(await groupInfo(t.redis, stream, 'other')).toMatchObject({ name: 'other', lag: 0 })
  })

  it('other errors are not swallowed', async () => {
    await t.redis.set(stream, 'not a stream')
    await expect(readGroups(t.redis, stream)).rejects.toThrow(/WRONGTYPE/)
  })
})

describe('parseConsumers', () => {
  it('reads each consumer of a group: name, pending, idle', async () => {
    await t.redis.xgroup('CREATE', stream, 'indexer', '0', 'MKSTREAM')
    const ids = await add(4)
    await read('indexer', 'a', 3)
    await read('indexer', 'b', 1)
    await t.redis.xack(stream, 'indexer', ids[3] as string)
    await new Promise((r) => setTimeout(r, 20))
    const consumers = parseConsumers(await t.redis.xinfo('CONSUMERS', stream, 'indexer'))
    expect(consumers.map(({ name, pending }) => ({ name, pending }))).toEqual([
      { name: 'a', pending: 3 },
      { name: 'b', pending: 0 },
    ])
    for (const c of consumers) expect(c.idle).toBeGreaterThanOrEqual(20)
    expect(parseConsumers(null)).toEqual([])
  })
})
