import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeEvents, type StreamEvent } from '@circles/core'
import { readGroups } from '@circles/stream-info'
import { loseByPrefix } from '@circles/testkit'
import type { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { createFirehoseService } from '../src/service.js'
import { syntheticCorpus } from './frames.js'
import {
  expectedEvents,
  served,
  storedCursor,
  type TestRedis,
  testConfig,
  testRedis,
  waitFor,
} from './helpers.js'
import { startRelayServer } from './relay-server.js'

// Redis comes back empty (a restart without persistence, FLUSHALL) under a running firehose: the cursor
// goes with the stream. The firehose must say so and resume from the last cursor up to which the indexer
// had applied everything, not start live: compared with an undisturbed run, no event may be missing.

const NOW = Date.now()
const FRAMES = served(syntheticCorpus(1500, 7))
const LAST = FRAMES.at(-1)?.seq as number
const EXPECTED = expectedEvents(FRAMES, NOW)
/** An event's identity whatever the order of its fields (the stream codec and the decoder differ in it). */
const key = (e: StreamEvent) =>
  JSON.stringify(Object.entries(e).sort(([a], [b]) => a.localeCompare(b)))

let cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.reverse()) await c()
  cleanups = []
})

/** Reads the stream as the indexer does (XREADGROUP, XACK), recreating the group when Redis lost it. */
function drain(redis: Redis, t: TestRedis) {
  const events: StreamEvent[] = []
  let running = true
  const loop = (async () => {
    const s = t.schema
    while (running) {
      try {
        const res = (await redis.xreadgroup(
          'GROUP',
          s.indexerGroup,
          'test',
          'COUNT',
          100,
          'BLOCK',
          20,
          'STREAMS',
          s.eventStream,
          '>',
        )) as [string, [string, string[]][]][] | null
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            events.push(...decodeEvents(fields[1] ?? ''))
            await redis.xack(s.eventStream, s.indexerGroup, id)
          }
        }
      } catch (err) {
        if (!/NOGROUP|UNBLOCKED/.test(String(err))) throw err
        await redis.xgroup('CREATE', s.eventStream, s.indexerGroup, '0', 'MKSTREAM').catch(() => {})
      }
    }
  })()
  return {
    events,
    stop: async () => {
      running = false
      await loop
    },
  }
}

describe('the firehose when Redis loses its data', () => {
  /** Runs the firehose with a draining reader, deletes everything under the prefix at a third, and ends. */
  async function runThroughLoss(env: Record<string, string>) {
    const t = await testRedis()
    const reader = t.redis.duplicate()
    await reader.connect()
    const server = await startRelayServer(FRAMES, { rate: 3000 })
    cleanups.push(t.cleanup, () => reader.disconnect(), server.close)
    const service = createFirehoseService(
      testConfig(server.url, t.prefix, {
        FIREHOSE_CURSOR: '0',
        FIREHOSE_LAG_CHECK_MS: '20',
        ...env,
      }),
      { redis: t.redis },
    )
    cleanups.push(() => service.close())
    const indexer = drain(reader, t)
    cleanups.push(indexer.stop)
    await service.start()

    await waitFor(
      'a third of the frames',
      async () => ((await storedCursor(t.redis, t.schema)) ?? 0) > 500,
    )
    await loseByPrefix(t.redis, t.prefix)
    const lostAt = server.connections.at(-1)?.sent ?? 0
    await waitFor('the last cursor', async () => (await storedCursor(t.redis, t.schema)) === LAST)
    await waitFor('the stream read', async () => {
      const groups = await readGroups(t.redis, t.schema.eventStream)
      return groups.some((g) => g.lag === 0 && g.pending === 0)
    })
    await indexer.stop()
    await service.close()
    const seen = new Set(indexer.events.map(key))
    const missing = EXPECTED.filter((e) => !seen.has(key(e)))
    // the first connection after the loss (later ones may resume from the cursor it stored since)
    expect(server.connections.length).toBeGreaterThanOrEqual(2)
    const resumedFrom = server.connections[1]?.cursor
    // What the test saw, for the figures (events in, delivered, lost, delivered twice).
    console.info(
      `cursor loss (${JSON.stringify(env)}): ${EXPECTED.length} events in, ${indexer.events.length} delivered, ${missing.length} lost, ${indexer.events.length - seen.size} delivered twice (resumed from ${resumedFrom}, lost at ~${lostAt})`,
    )
    return { t, missing, resumedFrom, lostAt }
  }

  it('reads the relay again over the refill window, so the lost index fills again, and says so', async () => {
    const { t, missing, resumedFrom } = await runThroughLoss({})
    // the whole run is inside the 49 h window: back to where this firehose began, not live
    expect(resumedFrom).toBe(0)
    expect(missing).toEqual([])
    expect(Number(await t.redis.hget(t.schema.firehoseMetrics, 'cursorsLost'))).toBe(1)
  })

  it('with FIREHOSE_REFILL_HOURS=0, resumes from the last applied cursor and misses no event', async () => {
    const { t, missing, resumedFrom, lostAt } = await runThroughLoss({ FIREHOSE_REFILL_HOURS: '0' })
    expect(resumedFrom).not.toBeNull()
    expect(resumedFrom).toBeGreaterThan(0)
    expect(resumedFrom).toBeLessThanOrEqual(lostAt)
    expect(missing).toEqual([])
    expect(Number(await t.redis.hget(t.schema.firehoseMetrics, 'cursorsLost'))).toBe(1)
  })

  it('after a restart, resumes from the checkpoint file when Redis holds no cursor', async () => {
    const t = await testRedis()
    const dir = mkdtempSync(join(tmpdir(), 'circles-checkpoint-'))
    const file = join(dir, 'firehose-checkpoint.json')
    const server = await startRelayServer(FRAMES)
    cleanups.push(t.cleanup, server.close, () => rmSync(dir, { recursive: true, force: true }))
    const env = {
      FIREHOSE_CHECKPOINT_FILE: file,
      FIREHOSE_LAG_CHECK_MS: '20',
      FIREHOSE_REFILL_HOURS: '0',
    }
    const first = createFirehoseService(
      testConfig(server.url, t.prefix, { ...env, FIREHOSE_CURSOR: '0' }),
      { redis: t.redis },
    )
    const reader = t.redis.duplicate()
    await reader.connect()
    const indexer = drain(reader, t)
    cleanups.push(() => reader.disconnect())
    await first.start()
    await waitFor('the last cursor', async () => (await storedCursor(t.redis, t.schema)) === LAST)
    await indexer.stop()
    await first.close()
    const checkpoint = JSON.parse(readFileSync(file, 'utf8'))
    expect(checkpoint).toMatchObject({ relay: server.url, seq: LAST })
    expect(checkpoint.marks[0]).toEqual([expect.any(Number), 0])

    // Redis comes back empty; the process starts again: FIREHOSE_CURSOR is not where it resumes.
    await loseByPrefix(t.redis, t.prefix)
    const second = createFirehoseService(
      testConfig(server.url, t.prefix, { ...env, FIREHOSE_CURSOR: '5' }),
      { redis: t.redis },
    )
    cleanups.push(() => second.close())
    await second.start()
    await waitFor('a second connection', () => server.connections.length === 2)
    expect(server.connections[1]?.cursor).toBe(checkpoint.safe ?? checkpoint.seq)
    expect(server.connections[1]?.cursor).toBeGreaterThan(5)
  })
})
