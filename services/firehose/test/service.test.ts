import { decodeEvents, type StreamEvent } from '@circles/core'
import { readGroups } from '@circles/stream-info'
import { afterEach, describe, expect, it } from 'vitest'
import { createFirehoseService, type FirehoseService } from '../src/service.js'
import { readLag } from '../src/stream-lag.js'
import { syntheticCorpus } from './frames.js'
import {
  expectedEvents,
  served,
  storedCursor,
  streamEvents,
  type TestRedis,
  testConfig,
  testRedis,
  waitFor,
} from './helpers.js'
import { type RelayServer, startRelayServer } from './relay-server.js'

const NOW = Date.now()
const FRAMES = served(syntheticCorpus(1500, 3))
const LAST = FRAMES.at(-1)?.seq as number
const EXPECTED = expectedEvents(FRAMES, NOW)

let cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
  cleanups = []
})

async function setup(
  opts: Parameters<typeof startRelayServer>[1] = {},
  frames = FRAMES,
): Promise<{ t: TestRedis; server: RelayServer }> {
  const t = await testRedis()
  const server = await startRelayServer(frames, opts)
  cleanups.push(t.cleanup, server.close)
  return { t, server }
}

function run(server: RelayServer, t: TestRedis, env: Record<string, string> = {}): FirehoseService {
  const service = createFirehoseService(testConfig(server.url, t.prefix, env), { redis: t.redis })
  cleanups.push(() => service.close())
  return service
}

async function metric(t: TestRedis, field: string): Promise<number> {
  return Number((await t.redis.hget(t.schema.firehoseMetrics, field)) ?? 0)
}

describe('firehose service against a loopback relay and the real Redis', () => {
  it('publishes every event once and stores the cursor, metrics and the indexer group', async () => {
    const { t, server } = await setup()
    const service = run(server, t, { FIREHOSE_CURSOR: '0' })
    await service.start()
    await waitFor('the last cursor', async () => (await storedCursor(t.redis, t.schema)) === LAST)
    expect(await streamEvents(t.redis, t.schema)).toEqual(EXPECTED)
    const groups = await readGroups(t.redis, t.schema.eventStream)
    expect(groups.map((g) => g.name)).toEqual([t.schema.indexerGroup])
    // Batched: far fewer entries than events.
    expect(await t.redis.xlen(t.schema.eventStream)).toBeLessThan(EXPECTED.length / 20)
    await service.close()
    await service.close() // idempotent
    expect(await metric(t, 'events')).toBe(EXPECTED.length)
    expect(await metric(t, 'frames')).toBe(FRAMES.length)
    expect(await metric(t, 'skipped:invalid_subject')).toBeGreaterThan(0)
    expect(await t.redis.hget(t.schema.firehoseMetrics, 'cursor')).toBe(String(LAST))
  })

  it('starts live without a cursor, and from FIREHOSE_CURSOR only when none is stored', async () => {
    const { t, server } = await setup()
    const live = run(server, t)
    await live.start()
    await waitFor('a connection', () => server.connections.length === 1)
    expect(server.connections[0]?.cursor).toBeNull()
    await live.close()

    await t.redis.set(t.schema.firehoseCursor, '1200')
    const resumed = run(server, t, { FIREHOSE_CURSOR: '5' })
    await resumed.start()
    await waitFor('the last cursor', async () => (await storedCursor(t.redis, t.schema)) === LAST)
    expect(server.connections[1]?.cursor).toBe(1200)
    const tail = expectedEvents(
      FRAMES.filter((f) => f.seq > 1200),
      NOW,
    )
    expect(await streamEvents(t.redis, t.schema)).toEqual(tail)
    await resumed.close()
  })

  it('reconnects when the server drops the socket, resuming with no gap and no duplicate', async () => {
    const { t, server } = await setup({ dropAfter: [317, 401, 5] })
    const service = run(server, t, { FIREHOSE_CURSOR: '0' })
    await service.start()
    await waitFor('the last cursor', async () => (await storedCursor(t.redis, t.schema)) === LAST)
    expect(server.connections.length).toBeGreaterThanOrEqual(4)
    // Each reconnect asked for exactly what was stored: the frames it had decoded were written first.
    expect(server.connections[1]?.cursor).toBe(317)
    expect(server.connections[2]?.cursor).toBe(317 + 401)
    expect(await streamEvents(t.redis, t.schema)).toEqual(EXPECTED)
    await service.close()
    expect(await metric(t, 'reconnects')).toBeGreaterThanOrEqual(3)
  })

  it('skips frames at or below the cursor when a relay replays them', async () => {
    const { t, server } = await setup({ dropAfter: [500], ignoreCursor: [false, true] })
    const service = run(server, t, { FIREHOSE_CURSOR: '0' })
    await service.start()
    await waitFor('the last cursor', async () => (await storedCursor(t.redis, t.schema)) === LAST)
    expect(server.connections[1]?.cursor).toBe(500)
    expect(await streamEvents(t.redis, t.schema)).toEqual(EXPECTED)
    await service.close()
    expect(await metric(t, 'stale')).toBe(500)
  })

  it('restarts from the stored cursor after close, with no gap and no duplicate', async () => {
    const { t, server } = await setup({ rate: 3000 })
    const first = run(server, t, { FIREHOSE_CURSOR: '0' })
    await first.start()
    await waitFor('some progress', async () => ((await storedCursor(t.redis, t.schema)) ?? 0) > 200)
    await first.close()
    const stopped = (await storedCursor(t.redis, t.schema)) as number
    expect(stopped).toBeLessThan(LAST)
    const second = run(server, t)
    await second.start()
    await waitFor('a second connection', () => server.connections.length === 2)
    expect(server.connections[1]?.cursor).toBe(stopped)
    await waitFor('the last cursor', async () => (await storedCursor(t.redis, t.schema)) === LAST)
    expect(await streamEvents(t.redis, t.schema)).toEqual(EXPECTED)
    await second.close()
  })

  it('detects a stalled socket and reconnects', async () => {
    const { t, server } = await setup({ stallAfter: [250] })
    const service = run(server, t, { FIREHOSE_CURSOR: '0', FIREHOSE_STALL_MS: '300' })
    await service.start()
    await waitFor('the last cursor', async () => (await storedCursor(t.redis, t.schema)) === LAST)
    expect(server.connections[1]?.cursor).toBe(250)
    expect(await streamEvents(t.redis, t.schema)).toEqual(EXPECTED)
    await service.close()
    expect(await metric(t, 'stalls')).toBe(1)
  })

  it('reports FutureCursor and retries with the same cursor, writing nothing', async () => {
    const { t, server } = await setup()
    await t.redis.set(t.schema.firehoseCursor, String(LAST + 1000))
    const service = run(server, t)
    await service.start()
    await waitFor('three attempts', () => server.connections.length >= 3)
    await service.close()
    expect(server.connections.every((c) => c.cursor === LAST + 1000)).toBe(true)
    expect(await metric(t, 'error:FutureCursor')).toBeGreaterThanOrEqual(2)
    expect(await t.redis.xlen(t.schema.eventStream)).toBe(0)
    expect(await storedCursor(t.redis, t.schema)).toBe(LAST + 1000)
  })

  it('pauses (disconnects) when the indexer lags and resumes from the cursor once it catches up', async () => {
    const { t, server } = await setup()
    const service = run(server, t, {
      FIREHOSE_CURSOR: '0',
      FIREHOSE_MAX_LAG: '4',
      FIREHOSE_RESUME_LAG: '1',
      FIREHOSE_MAXLEN: '1000',
      FIREHOSE_BATCH_FRAMES: '50',
    })
    await service.start()
    const group = t.schema.indexerGroup
    // Nobody reads: the service must stop reading and disconnect, leaving the stream short.
    await waitFor('a pause', async () => (await metric(t, 'backpressurePauses')) >= 1)
    await waitFor('the socket closed', () => server.connections.every((c) => c.closed))
    const cursorWhilePaused = await storedCursor(t.redis, t.schema)
    await new Promise((r) => setTimeout(r, 300))
    expect(await storedCursor(t.redis, t.schema)).toBe(cursorWhilePaused)
    expect(server.connections).toHaveLength(1)
    expect(cursorWhilePaused).toBeLessThan(LAST)

    // An indexer reads and acks: the service reconnects from its cursor, pausing again as needed.
    const reader = t.redis.duplicate({ enableOfflineQueue: true })
    cleanups.push(async () => reader.disconnect())
    const seen: string[] = []
    const events: StreamEvent[] = []
    let done = false
    const consume = (async () => {
      while (!done) {
        const res = (await reader.xreadgroup(
          'GROUP',
          group,
          'c1',
          'COUNT',
          2,
          'BLOCK',
          50,
          'STREAMS',
          t.schema.eventStream,
          '>',
        )) as [string, [string, string[]][]][] | null
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            seen.push(id)
            events.push(...decodeEvents(fields[1] ?? ''))
          }
          if (entries.length > 0)
            await reader.xack(t.schema.eventStream, group, ...entries.map(([id]) => id))
        }
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    await waitFor('the last cursor', async () => (await storedCursor(t.redis, t.schema)) === LAST)
    await waitFor('everything read', async () => (await readLag(t.redis, t.schema)).lag === 0)
    done = true
    await consume
    expect(server.connections.length).toBeGreaterThan(1)
    expect(server.connections[1]?.cursor).toBe(cursorWhilePaused)
    // Read entries were trimmed, and nothing unread was: the reader saw every entry exactly once.
    expect(new Set(seen).size).toBe(seen.length)
    expect(events).toEqual(EXPECTED)
    expect(await t.redis.xlen(t.schema.eventStream)).toBeLessThan(seen.length)
    await service.close()
    expect(await metric(t, 'backpressurePauses')).toBeGreaterThanOrEqual(1)
  })
})
