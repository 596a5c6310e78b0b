import { randomBytes } from 'node:crypto'
import { encodeEvent } from '@circles/core'
import { createSchema } from '@circles/redis-schema'
import { startReplayServer, startRollbackRedis } from '@circles/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeFrame } from '../src/fast-decoder.js'
import { createFirehoseService } from '../src/service.js'
import { syntheticCorpus } from './frames.js'
import { served, storedCursor, streamEvents, testConfig, waitFor } from './helpers.js'

// With appendfsync everysec, Redis answers writes before they reach the disk, and a kill -9 can lose the
// last second of them: it comes back as it was a moment before, stream entries and cursor together. A
// session that saw no failed write across that restart must not go on from its own cursor (it would write
// it over the older one and the frames in between would never be published again). Emulated exactly: a
// snapshot (RDB, no AOF), more batches, kill -9, a restart from the snapshot. The relay is held between
// frames meanwhile, so that no write of the session fails: the restart is seen only through the cursor.

const NOW = Date.now()
const FRAMES = served(syntheticCorpus(600, 11))
const LAST = FRAMES.at(-1)?.seq as number
/** The cursor in the snapshot, and the one Redis acknowledged before it was killed. */
const SNAPSHOT = 200
const ACKNOWLEDGED = 400

let cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
  cleanups = []
})

describe('firehose service across a Redis that restarts without its last acknowledged writes', () => {
  it('publishes again the frames whose batches Redis lost, from the cursor it came back with', async () => {
    const server = await startRollbackRedis()
    cleanups.push(() => server.stop())
    const redis = server.redis
    const relay = await startReplayServer(
      FRAMES.map((f) => ({ seq: f.seq, data: f.bytes })),
      { releasedThrough: SNAPSHOT },
    )
    cleanups.push(() => relay.close())
    const prefix = `test:fh-rollback:${randomBytes(4).toString('hex')}:`
    const schema = createSchema(prefix)
    // The service's own client, as in production: it reconnects to the restarted Redis by itself.
    const service = createFirehoseService(
      testConfig(relay.url, prefix, {
        REDIS_URL: server.url,
        FIREHOSE_CURSOR: '0',
      }),
    )
    cleanups.push(() => service.close())
    await service.start()

    await waitFor(
      'the snapshot cursor',
      async () => (await storedCursor(redis, schema)) === SNAPSHOT,
    )
    await server.snapshot()
    relay.release(ACKNOWLEDGED)
    await waitFor(
      'the acknowledged cursor',
      async () => (await storedCursor(redis, schema)) === ACKNOWLEDGED,
    )
    await server.rollback()
    await waitFor(
      'the restarted Redis',
      async () => (await redis.ping().catch(() => '')) === 'PONG',
    )
    // The rollback happened: the cursor and the stream are as in the snapshot.
    expect(await storedCursor(redis, schema)).toBe(SNAPSHOT)
    expect(await streamEvents(redis, schema)).toEqual(eventsOf(FRAMES.slice(0, SNAPSHOT)))
    // The service's client is back (its metrics are written again) before the relay sends more: a write
    // that failed on the way would end the session and hide what this test is about.
    await redis.del(schema.firehoseMetrics)
    await waitFor(
      'the service writing again',
      async () => (await redis.exists(schema.firehoseMetrics)) === 1,
    )
    expect(relay.connections).toBe(1)

    relay.release()
    await waitFor('the last cursor', async () => (await storedCursor(redis, schema)) === LAST)
    await service.close()
    // The frames whose events are not in the stream: none. (Events of the batch that found the cursor
    // moved were added before the check and come twice: the indexer applies an event twice as once.)
    const inStream = new Set((await streamEvents(redis, schema)).map(encodeEvent))
    const missing = FRAMES.filter((f) =>
      decodeFrame(f.bytes, NOW).events.some((e) => !inStream.has(encodeEvent(e))),
    ).map((f) => f.seq)
    expect(missing, `frames ${missing[0]}..${missing.at(-1)} lost`).toEqual([])
    // Because the session started again from the cursor Redis came back with.
    expect(relay.cursors).toContain(SNAPSHOT)
  }, 60_000)
})

function eventsOf(frames: typeof FRAMES) {
  return frames.flatMap((f) => decodeFrame(f.bytes, NOW).events)
}
