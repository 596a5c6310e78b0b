import { HOUR_MS } from '@circles/core'
import {
  createIndexReader,
  createIndexWriter,
  HEADER_SIZE,
  type HourRow,
  type IndexReader,
  RECORD_SIZE,
} from '@circles/interaction-index'
import { clockAnchor, createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { create, plc } from './helpers.js'

const ALICE = plc('alice')
const BOB = plc('bob')
const CAROL = plc('carol')
const T0 = clockAnchor()
const H0 = Math.floor(T0 / HOUR_MS)

let t: TestRedis
let clock: number
let reader: IndexReader

async function scan(hour: number): Promise<HourRow[]> {
  const rows: HourRow[] = []
  await reader.scanHour(hour, async (batch) => {
    rows.push(...batch)
  })
  return rows.sort((a, b) => a.author.localeCompare(b.author))
}

beforeEach(async () => {
  t = await createTestRedis('grace')
  clock = T0 + 60_000
  reader = createIndexReader(t.redis, t.schema, { now: () => clock })
})

afterEach(async () => {
  await t.cleanup()
})

describe('roll-up grace', () => {
  it('keeps an hour the roll-up has not folded past the 49 h horizon, while reads count 48 h', async () => {
    const writer = createIndexWriter(t.redis, t.schema, { now: () => clock, rollupGraceHours: 24 })
    await writer.apply([
      create(ALICE, BOB, 'like', T0),
      create(ALICE, BOB, 'like', T0 + 1),
      create(CAROL, BOB, 'reply', T0 + 2),
    ])
    // the expiry waits for the grace (24 h here): hour end + 48 h + 24 h
    expect(Number(await t.redis.call('EXPIRETIME', t.schema.accountLog(BOB)))).toBe(
      (H0 + 1) * 3600 + 72 * 3600,
    )
    // 52 hours later, with no roll-up in between (the scheduler was down), the same accounts write again:
    // their logs are loaded past the old 49 h horizon, and must not be compacted
    clock = T0 + 52 * HOUR_MS
    await writer.apply([
      create(ALICE, BOB, 'like', clock - 1000),
      create(CAROL, BOB, 'like', clock),
    ])
    expect(await scan(H0)).toEqual(
      [
        { author: ALICE, subject: BOB, kind: 'like', count: 2 },
        { author: CAROL, subject: BOB, kind: 'reply', count: 1 },
      ].sort((a, b) => a.author.localeCompare(b.author)),
    )
    // reads still count only the window
    const summary = await reader.summary(BOB, 48)
    expect(summary.received).toEqual({ like: 2, repost: 0, reply: 0, quote: 0 })
  })

  it('compacts an hour away once the roll-up has folded it', async () => {
    const writer = createIndexWriter(t.redis, t.schema, { now: () => clock, rollupGraceHours: 24 })
    await writer.apply([create(ALICE, BOB, 'like', T0), create(CAROL, BOB, 'reply', T0 + 1)])
    clock = T0 + 52 * HOUR_MS
    await writer.apply([create(ALICE, BOB, 'like', clock - 1000)])
    expect(await scan(H0)).toHaveLength(2)
    // the scheduler folds hour H0 and moves its cursor (as rollUpHour does); the writer reads the cursor
    // again after a minute at most
    await t.redis.set(t.schema.rollupCursor, String(H0))
    clock += 61_000
    await writer.apply([create(ALICE, CAROL, 'like', clock), create(CAROL, BOB, 'like', clock)])
    expect(await scan(H0)).toEqual([])
    // Bob's log holds only the two new records: compaction freed the hour
    const log = (await t.redis.getBuffer(t.schema.accountLog(BOB))) as Buffer
    expect(log.length).toBe(HEADER_SIZE + 2 * RECORD_SIZE)
  })
})

describe('older log headers', () => {
  it('reads a log with the 8-byte header and rewrites it with the current one when touched', async () => {
    const writer = createIndexWriter(t.redis, t.schema, { now: () => clock })
    const events = [create(ALICE, BOB, 'like', T0), create(CAROL, BOB, 'reply', T0 + 1)]
    await writer.apply(events)
    const key = t.schema.accountLog(BOB)
    const log = (await t.redis.getBuffer(key)) as Buffer
    // the old header: oldest second, inbound and outbound appends (uint32, uint16, uint16 BE)
    const old = Buffer.alloc(8)
    log.copy(old, 0, 0, 4)
    old.writeUInt16BE(log.readUInt16BE(16) & 0x7fff, 4)
    old.writeUInt16BE(log.readUInt16BE(18) & 0x7fff, 6)
    const records = log.subarray(HEADER_SIZE)
    await t.redis.set(key, Buffer.concat([old, records]), 'KEEPTTL')
    const before = await reader.summary(BOB, 48)
    expect(before.received).toEqual({ like: 1, repost: 0, reply: 1, quote: 0 })
    // the same events again find their records in the old log: nothing is appended twice
    const again = await writer.apply(events)
    expect(again.duplicates).toBe(2)
    await writer.apply([create(ALICE, BOB, 'repost', T0 + 2)])
    const after = (await t.redis.getBuffer(key)) as Buffer
    expect(after.length).toBe(HEADER_SIZE + 3 * RECORD_SIZE)
    expect(after.subarray(HEADER_SIZE, HEADER_SIZE + records.length)).toEqual(records)
    expect((await reader.summary(BOB, 48)).received).toEqual({
      like: 1,
      repost: 1,
      reply: 1,
      quote: 0,
    })
  })
})
