import type { TestRedis } from '@circles/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { publishBatch } from '../src/publisher.js'
import { createFirehoseService } from '../src/service.js'
import { syntheticCorpus } from './frames.js'
import {
  byShard,
  expectedEvents,
  lowestCursor,
  served,
  shardEvents,
  testConfig,
  testRedis,
  waitFor,
} from './helpers.js'
import { startRelayServer } from './relay-server.js'

// FIREHOSE_SHARDS=2 on one Redis: each shard's cursor moves in a MULTI of its own, so after a crash one
// may be ahead of the other. The relay is read again from the lower one; the one ahead must not get the
// frames it already holds a second time.

const NOW = Date.now()
const FRAMES = served(syntheticCorpus(1200, 21))
const LAST = FRAMES.at(-1)?.seq as number
const opts = { eventsPerEntry: 50, maxLen: 1_000_000 }

let cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
  cleanups = []
})

/** The firehose with two shards over the relay's frames, until every shard's cursor is at the last. */
async function runTwoShards(t: TestRedis, relayUrl: string): Promise<void> {
  const service = createFirehoseService(testConfig(relayUrl, t.prefix, { FIREHOSE_SHARDS: '2' }), {
    redis: t.redis,
  })
  cleanups.push(() => service.close())
  await service.start()
  await waitFor('the last cursor', async () => (await lowestCursor(t.redis, t.schema, 2)) === LAST)
  await service.close()
}

describe('two stream shards', () => {
  it('resumes from the lower cursor and gives the shard ahead nothing twice', async () => {
    const t = await testRedis()
    const server = await startRelayServer(FRAMES)
    cleanups.push(t.cleanup, server.close)
    // As a crash can leave them: shard 0 holds frames 1..300, shard 1 frames 1..800.
    const upTo300 = byShard(expectedEvents(FRAMES.slice(0, 300), NOW), 2)
    const upTo800 = byShard(expectedEvents(FRAMES.slice(0, 800), NOW), 2)
    await publishBatch(t.redis, t.schema.shard(0), { events: upTo300[0] ?? [], seq: 300 }, opts)
    await publishBatch(t.redis, t.schema.shard(1), { events: upTo800[1] ?? [], seq: 800 }, opts)

    await runTwoShards(t, server.url)

    expect(server.connections[0]?.cursor).toBe(300)
    expect(await t.redis.get(t.schema.shard(1).cursor)).toBe(String(LAST))
    const expected = byShard(expectedEvents(FRAMES, NOW), 2)
    expect(expected[0]?.length).toBeGreaterThan(100)
    expect(expected[1]?.length).toBeGreaterThan(100)
    expect(await shardEvents(t.redis, t.schema, 2)).toEqual(expected)
  })

  it('starts a shard without a cursor (FIREHOSE_SHARDS raised) at the cursor of the others', async () => {
    const t = await testRedis()
    const server = await startRelayServer(FRAMES)
    cleanups.push(t.cleanup, server.close)
    // One shard until frame 500; then two.
    const first = expectedEvents(FRAMES.slice(0, 500), NOW)
    await publishBatch(t.redis, t.schema.shard(0), { events: first, seq: 500 }, opts)

    await runTwoShards(t, server.url)

    expect(server.connections[0]?.cursor).toBe(500)
    const after = byShard(expectedEvents(FRAMES.slice(500), NOW), 2)
    expect(await shardEvents(t.redis, t.schema, 2)).toEqual([
      [...first, ...(after[0] ?? [])],
      after[1],
    ])
  })
})
