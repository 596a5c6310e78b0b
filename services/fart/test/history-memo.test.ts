import { foldRepo, type RepoRecord } from '@circles/backfill'
import { DAY_MS, tidFromMs } from '@circles/core'
import { luaSource } from '@circles/redis-wire'
import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { History } from '../src/history.js'
import {
  buildSecondApp,
  counts,
  type DayRows,
  did,
  type Harness,
  startHarness,
  writeDayBlob,
} from './helpers.js'

// The memo of complete days (src/history-memo.ts) against the real Redis: every answer of the API with it
// must be the bytes of a second API without it (HISTORY_MEMO_DAYS=0) on the same data, whatever changed
// in between. Days are anchored on today, never a calendar date.

const A = did(1)
const P = Array.from({ length: 40 }, (_, i) => did(500 + i))

let h: Harness
let plain: FastifyInstance
let today: number

beforeEach(async () => {
  h = await startHarness()
  plain = await buildSecondApp(h, { config: { ...h.config, historyMemoDays: 0 } })
  today = Math.floor(Date.now() / DAY_MS)
  h.appview.profiles.set(A, { did: A, handle: 'alice.test' })
  for (const [i, p] of P.entries()) h.appview.profiles.set(p, { did: p, handle: `p${i}.test` })
  // Folded through 05:59 of the day before yesterday: older days complete, that one partial.
  await h.t.redis.set(h.t.schema.rollupCursor, String((today - 2) * 24 + 5))
})
afterEach(async () => {
  await plain.close()
  await h.close()
})

/** The memo's answer, checked against the plain app's (asked second: it may fill the profile cache). */
async function both(query = '?days=7'): Promise<History> {
  const url = `/v1/accounts/${A}/history${query}`
  const memo = await h.app.inject(url)
  const read = await plain.inject(url)
  expect(memo.statusCode).toBe(read.statusCode)
  expect(memo.body).toBe(read.body)
  return memo.json() as History
}

const dateOf = (day: number) => new Date(day * DAY_MS).toISOString().slice(0, 10)
const dayOf = (x: History, day: number) => x.history.find((d) => d.date === dateOf(day))!
const dids = (x: History, day: number) => dayOf(x, day).partners.map((p) => p.did)

function like(subject: string, ms: number, n: number): RepoRecord {
  return {
    collection: 'app.bsky.feed.like',
    rkey: tidFromMs(ms, n % 1024),
    record: {
      $type: 'app.bsky.feed.like',
      subject: {
        uri: `at://${subject}/app.bsky.feed.post/${tidFromMs(ms - 60_000)}`,
        cid: 'bafyreib',
      },
      createdAt: new Date(ms).toISOString(),
    },
  }
}

describe('the history memo of complete days', () => {
  it('sees a backfill rewrite a remembered day, even one that keeps its blobs’ lengths', async () => {
    const d = today - 5
    await writeDayBlob(h, A, 's', d, [
      [P[0]!, 'like', 3],
      [P[1]!, 'like', 2],
    ])
    await both()
    // What the memo relies on: a rewrite of the same length that sets no token goes unseen.
    await writeDayBlob(h, A, 's', d, [
      [P[0]!, 'like', 3],
      [P[1]!, 'like', 9],
    ])
    const stale = (await h.app.inject(`/v1/accounts/${A}/history?days=7`)).json() as History
    expect(dayOf(stale, d).sent.like).toBe(5)
    await writeDayBlob(h, A, 's', d, [
      [P[0]!, 'like', 3],
      [P[1]!, 'like', 2],
    ])
    // The backfill sets one: two likes of P2 that day, then three (one count more, the same bytes).
    const at = d * DAY_MS + 3_600_000
    const deps = { redis: h.t.redis, schema: h.t.schema, writer: h.writer }
    await foldRepo(deps, A, [like(P[2]!, at, 1), like(P[2]!, at + 1000, 2)])
    expect(dayOf(await both(), d).sent.like).toBe(7)
    const lengths = await h.t.redis.hstrlen(h.t.schema.longTerm(A, 'bs'), String(d))
    await foldRepo(deps, A, [like(P[2]!, at, 1), like(P[2]!, at + 1000, 2), like(P[2]!, at, 3)])
    expect(await h.t.redis.hstrlen(h.t.schema.longTerm(A, 'bs'), String(d))).toBe(lengths)
    const after = await both()
    expect(dayOf(after, d).sent.like).toBe(8)
    const p2 = dayOf(after, d).partners.find((p) => p.did === P[2])
    expect(p2?.sent).toEqual(counts({ like: 3 }))
  })

  it('leaves out partners hidden since, reading the day again once its candidates run out', async () => {
    const d = today - 4
    const rows: DayRows = P.map((p, i) => [p, 'like', 100 - i])
    await writeDayBlob(h, A, 'r', d, rows)
    expect(dids(await both('?days=7&top=3'), d)).toEqual([P[0], P[1], P[2]])
    await h.t.redis.sadd(h.t.schema.optOuts, P[0]!)
    expect(dids(await both('?days=7&top=3'), d)).toEqual([P[1], P[2], P[3]])
    // 35 hidden: all 32 candidates a day keeps, and more.
    await h.t.redis.sadd(h.t.schema.optOuts, ...P.slice(1, 35))
    expect(dids(await both('?days=7&top=3'), d)).toEqual([P[35], P[36], P[37]])
    await h.t.redis.set(h.t.schema.accountPurged(P[35]!), '1')
    const x = await both('?days=7&top=3')
    expect(dids(x, d)).toEqual([P[36], P[37], P[38]])
    // The day's totals are the account's own: hidden partners still count there.
    expect(dayOf(x, d).received.like).toBe(rows.reduce((n, [, , c]) => n + c, 0))
    // The account itself opting out: 403, remembered days or not; back once it opts in.
    await h.t.redis.sadd(h.t.schema.optOuts, A)
    expect(((await both()) as unknown as { error: string }).error).toBe('OptedOut')
    await h.t.redis.srem(h.t.schema.optOuts, A, ...P.slice(0, 35))
    expect(dids(await both('?days=7&top=3'), d)).toEqual([P[0], P[1], P[2]])
  })

  it('takes handles from the profile cache at every request', async () => {
    const d = today - 3
    await writeDayBlob(h, A, 'bs', d, [[P[0]!, 'reply', 1]])
    expect(dayOf(await both(), d).partners[0]?.handle).toBe('p0.test')
    await h.t.redis.set(
      h.t.schema.profile(P[0]!),
      JSON.stringify({ did: P[0], handle: 'renamed.test', displayName: 'Renamed' }),
    )
    expect(dayOf(await both(), d).partners[0]).toMatchObject({
      handle: 'renamed.test',
      displayName: 'Renamed',
    })
  })

  it('sees records leave a remembered day (a forgotten partner, the retention prune)', async () => {
    const d = today - 6
    await writeDayBlob(h, A, 's', d, [
      [P[0]!, 'like', 3],
      [P[1]!, 'quote', 70],
    ])
    expect(dayOf(await both(), d).sent).toEqual(counts({ like: 3, quote: 70 }))
    // The forget step rewrites the blob without the forgotten partner's records.
    await writeDayBlob(h, A, 's', d, [[P[0]!, 'like', 3]])
    expect(dayOf(await both(), d).sent).toEqual(counts({ like: 3 }))
    await h.t.redis.hdel(h.t.schema.longTerm(A, 's'), String(d))
    expect(dayOf(await both(), d)).toMatchObject({ sent: counts(), partners: [] })
  })

  it('never remembers a partial day, and remembers it once the roll-up completes it', async () => {
    const d = today - 2
    await writeDayBlob(h, A, 's', d, [[P[0]!, 'like', 3]])
    expect(dayOf(await both(), d)).toMatchObject({ complete: false, foldedHours: 6 })
    // The roll-up folds another hour: the same bytes but a count (and the mark byte) moved.
    await writeDayBlob(h, A, 's', d, [[P[0]!, 'like', 4]])
    expect(dayOf(await both(), d).sent.like).toBe(4)
    await h.t.redis.set(h.t.schema.rollupCursor, String(d * 24 + 23))
    expect(dayOf(await both(), d)).toMatchObject({ complete: true, sent: counts({ like: 4 }) })
    expect(dayOf(await both(), d).sent.like).toBe(4)
  })

  it('knows a day by its backfill token and its four blobs’ lengths (lua/day-versions.lua)', async () => {
    const d = today - 8
    await writeDayBlob(h, A, 's', d, [[P[0]!, 'like', 3]])
    await writeDayBlob(h, A, 'br', d, [
      [P[1]!, 'like', 70],
      [P[2]!, 'like', 1],
    ])
    await h.t.redis.hset(h.t.schema.longTermVersion(A), String(d), 'tok')
    const keys = [
      ...(['s', 'r', 'bs', 'br'] as const).map((side) => h.t.schema.longTerm(A, side)),
      h.t.schema.longTermVersion(A),
    ]
    const lua = luaSource(import.meta.url, 'day-versions')
    expect(await h.t.redis.eval(lua, 5, ...keys, String(d), String(d + 1))).toEqual([
      // compact blobs: mark, then per partner a head, its counts unless one count of 1, and the id
      `tok ${1 + 1 + 1 + 8} 0 0 ${1 + (1 + 1 + 8) + (1 + 8)}`,
      ' 0 0 0 0',
    ])
  })
})
