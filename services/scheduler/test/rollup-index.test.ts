import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HOUR_MS } from '@circles/core'
import { createIndexWriter } from '@circles/interaction-index'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createLiveHours } from '../src/live-index.js'
import { readRollupCursor, runRollup } from '../src/rollup.js'
import {
  actualAggregates,
  expectedAggregates,
  makeDids,
  makeEvents,
  newRollupFence,
  sortedEntries,
} from './helpers.js'

// The roll-up over the real live index (written with the indexer's writer), across a real crash:
// a child process killed with SIGKILL half-way through an hour.

const here = dirname(fileURLToPath(import.meta.url))
const CHILD = resolve(here, '../dist/test/rollup-child.js')
const CURRENT = Math.floor(Date.now() / HOUR_MS)
const HOURS = [CURRENT - 6, CURRENT - 5, CURRENT - 4]
const NOW_AFTER = (CURRENT - 4 + 48) * HOUR_MS + 1

describe('roll-up over the live index', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('sched-rollup-index')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  const dids = makeDids(150, 5)
  const { events, rows } = makeEvents(dids, HOURS, 800)
  const expected = expectedAggregates(rows)

  it('folds the indexed hours exactly and drops their hour index', async () => {
    const writer = createIndexWriter(t.redis, t.schema)
    await writer.apply(events)
    const live = createLiveHours(t.redis, t.schema)
    expect(await live.hours()).toEqual(HOURS)
    const res = await runRollup(t.redis, t.schema, live, {
      now: NOW_AFTER,
      liveWindowHours: 48,
      retentionDays: 90,
      fence: await newRollupFence(t.redis, t.schema),
    })
    expect(res.rolled.map((h) => h.hour)).toEqual(HOURS)
    expect(await live.hours()).toEqual([])
    const actual = await actualAggregates(t.redis, t.schema, dids)
    expect(sortedEntries(actual)).toEqual(sortedEntries(expected))
  })

  it('folds an hour of more authors than one read batch (200) exactly, batches read ahead', async () => {
    const many = makeDids(500, 6)
    const hour = HOURS[0] as number
    const big = makeEvents(many, [hour], 1500)
    await createIndexWriter(t.redis, t.schema).apply(big.events)
    const live = createLiveHours(t.redis, t.schema)
    const res = await runRollup(t.redis, t.schema, live, {
      now: NOW_AFTER,
      liveWindowHours: 48,
      retentionDays: 90,
      fence: await newRollupFence(t.redis, t.schema),
    })
    expect(res.rolled.map((h) => h.hour)).toEqual([hour])
    const actual = await actualAggregates(t.redis, t.schema, many)
    expect(sortedEntries(actual)).toEqual(sortedEntries(expectedAggregates(big.rows)))
    const authors = new Set([...big.rows.values()].flat().map((row) => row.author))
    expect(authors.size).toBeGreaterThan(2 * 200)
  })

  it('a roll-up killed with SIGKILL mid-hour, then rerun, counts each interaction once', async () => {
    expect(existsSync(CHILD), `build first (pnpm exec tsc --build): ${CHILD}`).toBe(true)
    await createIndexWriter(t.redis, t.schema).apply(events)
    const killedAt = await new Promise<string>((done, fail) => {
      const child = spawn(process.execPath, [CHILD], {
        env: { ...process.env, PREFIX: t.prefix, NOW: String(NOW_AFTER), REDIS_URL: t.url },
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      let buf = ''
      let last = ''
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString()
        const lines = buf.split('\n')
        buf = lines.pop() ?? ''
        for (const line of lines) {
          last = line
          const [, cursor, done] = line.split(' ')
          // Kill inside the second hour, after part of its blobs were written.
          if (cursor === String(HOURS[0]) && Number(done) >= 60) child.kill('SIGKILL')
        }
      })
      child.on('exit', (code, signal) =>
        signal === 'SIGKILL' ? done(last) : fail(new Error(`child exited ${code}: ${last}`)),
      )
    })
    expect(killedAt.startsWith(`chunk ${HOURS[0]}`)).toBe(true)
    expect(await readRollupCursor(t.redis, t.schema)).toBe(HOURS[0])
    const partial = await actualAggregates(t.redis, t.schema, dids)
    expect(sortedEntries(partial)).not.toEqual(sortedEntries(expected))

    const live = createLiveHours(t.redis, t.schema)
    const res = await runRollup(t.redis, t.schema, live, {
      now: NOW_AFTER,
      liveWindowHours: 48,
      retentionDays: 90,
      fence: await newRollupFence(t.redis, t.schema),
    })
    expect(res.rolled.map((h) => h.hour)).toEqual([HOURS[1], HOURS[2]])
    expect(res.rolled[0]?.alreadyDone).toBeGreaterThan(0)
    const actual = await actualAggregates(t.redis, t.schema, dids)
    expect(sortedEntries(actual)).toEqual(sortedEntries(expected))
  })
})
