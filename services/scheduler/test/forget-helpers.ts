import { DID_TABLE_BUCKETS, didId, didTableBucket } from '@circles/interaction-index'
import { forEachPackedRecord } from '@circles/long-term'
import type { TestRedis } from '@circles/testkit'
import { expect } from 'vitest'
import type { HourRow } from '../src/live-source.js'
import { actualAggregates, expectedAggregates, sortedEntries } from './helpers.js'

// What the forget tests check after a run: nothing names a forgotten account, no day blob holds its id,
// no DID table entry maps it, and everyone else's aggregates are exactly theirs without it.

/** Every key of the test's prefix, by SCAN (the Redis is shared: no KEYS). */
export async function allKeys(t: TestRedis): Promise<string[]> {
  const out: string[] = []
  let cursor = '0'
  do {
    const [next, page] = await t.redis.scan(cursor, 'MATCH', t.schema.all, 'COUNT', 2000)
    cursor = next
    out.push(...page)
  } while (cursor !== '0')
  return out
}

/** Every record of every long-term day blob, as [key, day, partner id (hex)]. */
export async function longTermRecords(t: TestRedis): Promise<[string, string, string][]> {
  const out: [string, string, string][] = []
  let cursor = '0'
  do {
    const [next, page] = await t.redis.scan(
      cursor,
      'MATCH',
      t.schema.longTermPattern,
      'COUNT',
      2000,
    )
    cursor = next
    for (const key of page) {
      for (const [day, blob] of Object.entries(await t.redis.hgetallBuffer(key))) {
        forEachPackedRecord(blob, (r) => out.push([key, day, r.partner.toString('hex')]))
      }
    }
  } while (cursor !== '0')
  return out
}

/**
 * Asserts that Redis holds nothing about `gone` but its purge marks (the indexer's, with a TTL; absent
 * where the test queued an account without purging it).
 */
export async function expectForgotten(
  t: TestRedis,
  gone: readonly string[],
  purgeMarks = true,
): Promise<void> {
  const keys = await allKeys(t)
  const naming = keys.filter((k) => gone.some((d) => k.includes(d))).sort()
  expect(naming).toEqual(purgeMarks ? gone.map((d) => t.schema.accountPurged(d)).sort() : [])
  const ids = new Set(gone.map((d) => didId(d).toString('hex')))
  const records = await longTermRecords(t)
  expect(records.length).toBeGreaterThan(0)
  expect(records.filter(([, , id]) => ids.has(id))).toEqual([])
  for (const d of gone) {
    const id = didId(d)
    // The id as a Buffer: a latin1 string would go out as UTF-8.
    expect(await t.redis.hgetBuffer(t.schema.didTable(didTableBucket(id)), id)).toBe(null)
  }
  // And no table bucket holds one of them under another id.
  const tables = new Set(Array.from({ length: DID_TABLE_BUCKETS }, (_, b) => t.schema.didTable(b)))
  for (const key of keys.filter((k) => tables.has(k))) {
    const values = await t.redis.hvals(key)
    expect(values.filter((v) => gone.some((d) => d.endsWith(v)))).toEqual([])
  }
}

/** Aggregates of `dids` as stored, without day blobs left empty (a blob keeps its mark when emptied). */
export async function storedAggregates(
  t: TestRedis,
  dids: readonly string[],
): Promise<ReturnType<typeof sortedEntries>> {
  const actual = await actualAggregates(t.redis, t.schema, dids)
  for (const [k, m] of actual) if (m.size === 0) actual.delete(k)
  return sortedEntries(actual)
}

/**
 * What the aggregates of everyone else must be: a brute-force count of the rows without `gone`, folded
 * rows in `s`/`r` and backfilled ones (if any) in `bs`/`br`.
 */
export function aggregatesWithout(
  hours: Iterable<[number, HourRow[]]>,
  gone: readonly string[],
  backfilled: Iterable<[number, HourRow[]]> = [],
): ReturnType<typeof sortedEntries> {
  const without = (from: Iterable<[number, HourRow[]]>) => {
    const data = new Map<number, HourRow[]>()
    for (const [hour, rows] of from) {
      const kept = rows.filter((r) => !gone.includes(r.author) && !gone.includes(r.subject))
      data.set(hour, [...(data.get(hour) ?? []), ...kept])
    }
    return data
  }
  const all = expectedAggregates(without(hours))
  for (const [key, m] of expectedAggregates(without(backfilled), 'bs')) all.set(key, m)
  return sortedEntries(all)
}
