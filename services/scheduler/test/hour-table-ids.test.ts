import { HOUR_MS } from '@circles/core'
import { createIndexWriter, didId, didTableBucket } from '@circles/interaction-index'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type HourTable, loadHour } from '../src/hour-table.js'
import { createLiveHours } from '../src/live-index.js'
import { makeDids, makeEvents } from './helpers.js'

// The roll-up reads an hour of the live index as ids (scanHourIds, DIDs named once per account); the rows
// read (scanHour, DIDs per row) is the reference: both must load the same table and skip the same rows,
// also where the DID table cannot name a subject or names a malformed DID.

const HOUR = Math.floor(Date.now() / HOUR_MS) - 5

function lines(table: HourTable): string[] {
  const out: string[] = []
  for (let i = 0; i < table.n; i++) {
    out.push(
      `${table.dids[table.author[i] as number]} ${table.dids[table.subject[i] as number]} ${table.kind[i]} ${table.count[i]}`,
    )
  }
  return out.sort()
}

describe('loadHour over the live index by ids', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('sched-hour-ids')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  it('loads the same table as the rows read, with the same skips', async () => {
    const dids = makeDids(400, 9)
    const { events, rows } = makeEvents(dids, [HOUR], 3000, 11)
    await createIndexWriter(t.redis, t.schema).apply(events)
    // One account the DID table cannot name, one it names with a malformed DID (only a subject: a
    // malformed author's log key cannot be built, in either read).
    const hourRows = rows.get(HOUR) ?? []
    const authors = new Set(hourRows.map((r) => r.author))
    const bad = hourRows.find((r) => !authors.has(r.subject))?.subject as string
    const gone = hourRows.find((r) => r.subject !== bad)?.subject as string
    expect(bad).toBeDefined()
    const id = (d: string) => didId(d)
    await t.redis.hdel(t.schema.didTable(didTableBucket(id(gone))), id(gone))
    await t.redis.hset(t.schema.didTable(didTableBucket(id(bad))), id(bad), 'not a did!')

    const live = createLiveHours(t.redis, t.schema)
    expect(live.ids).toBeDefined()
    const byIds = await loadHour(live, HOUR)
    const byRows = await loadHour({ ...createLiveHours(t.redis, t.schema), ids: undefined }, HOUR)
    expect(byIds.table.n).toBeGreaterThan(1000)
    expect(byRows.skipped).toBeGreaterThan(0)
    expect(lines(byIds.table)).toEqual(lines(byRows.table))
    expect(byIds.skipped).toBe(byRows.skipped)
    // every account is named, once, and holds rows
    const used = new Set<number>()
    for (let i = 0; i < byIds.table.n; i++) {
      used.add(byIds.table.author[i] as number)
      used.add(byIds.table.subject[i] as number)
    }
    expect(used.size).toBe(byIds.table.accounts)
    expect(new Set(byIds.table.dids).size).toBe(byIds.table.accounts)
    expect(byIds.table.dids).not.toContain(gone)
  })
})
