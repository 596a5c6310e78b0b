import { DAY_MS, type InteractionKind } from '@circles/core'
import type { LongTermSide } from '@circles/redis-schema'
import { prng } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { History } from '../src/history.js'
import type { KindCounts } from '../src/params.js'
import { counts, type DayRows, did, type Harness, startHarness, writeDayBlob } from './helpers.js'

// The history route over day blobs written with the long-term package's encoder (as a roll-up or a
// backfill writes them), against the real Redis. Days are anchored on today, never a calendar date.

const A = did(1)
const P1 = did(201)
const P2 = did(202)
const P3 = did(203)
const P4 = did(204)

type Rows = DayRows

function writeBlob(h: Harness, side: LongTermSide, day: number, rows: Rows, owner = A) {
  return writeDayBlob(h, owner, side, day, rows)
}

function dateOf(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10)
}

async function history(h: Harness, query = '', headers: Record<string, string> = {}) {
  return h.app.inject({ url: `/v1/accounts/${A}/history${query}`, headers })
}

describe('GET /v1/accounts/:actor/history', () => {
  let h: Harness
  let today: number
  beforeEach(async () => {
    h = await startHarness()
    today = Math.floor(Date.now() / DAY_MS)
    h.appview.profiles.set(A, { did: A, handle: 'alice.test' })
    for (const [i, p] of [P1, P2, P3, P4].entries()) {
      h.appview.profiles.set(p, { did: p, handle: `p${i + 1}.test` })
    }
    // Folded through 05:59 of the day before yesterday: older days complete, that one partial.
    await h.t.redis.set(h.t.schema.rollupCursor, String((today - 2) * 24 + 5))
    const d = today - 3
    await writeBlob(h, 's', d, [
      [P1, 'like', 3],
      [P2, 'reply', 1],
    ])
    await writeBlob(h, 'bs', d, [[P1, 'like', 2]])
    await writeBlob(h, 'r', d, [[P1, 'repost', 4]])
    // 70 needs the varint form.
    await writeBlob(h, 'br', d, [[P3, 'quote', 70]])
    await writeBlob(h, 's', today - 10, [[P4, 'like', 1]])
  })
  afterEach(() => h.close())

  it('adds the four sides per day, ranks the day’s partners and fills empty days with zeros', async () => {
    const res = await history(h, '?days=7')
    expect(res.statusCode).toBe(200)
    const body = res.json() as History
    expect(body.actor).toEqual({ did: A, handle: 'alice.test' })
    expect(body.history.map((x) => x.date)).toEqual(
      Array.from({ length: 7 }, (_, i) => dateOf(today - 6 + i)),
    )
    const day = body.history.find((x) => x.date === dateOf(today - 3))!
    expect(day.sent).toEqual(counts({ like: 5, reply: 1 }))
    expect(day.received).toEqual(counts({ repost: 4, quote: 70 }))
    expect(day.partners).toEqual([
      { did: P3, handle: 'p3.test', sent: counts(), received: counts({ quote: 70 }) },
      { did: P1, handle: 'p1.test', sent: counts({ like: 5 }), received: counts({ repost: 4 }) },
      { did: P2, handle: 'p2.test', sent: counts({ reply: 1 }), received: counts() },
    ])
    for (const other of body.history.filter((x) => x !== day)) {
      expect(other.sent).toEqual(counts())
      expect(other.received).toEqual(counts())
      expect(other.partners).toEqual([])
    }
    // The day ten days ago is outside a 7-day history, inside the default 30.
    const long = (await history(h)).json() as History
    expect(long.history).toHaveLength(30)
    expect(long.history.find((x) => x.date === dateOf(today - 10))?.sent).toEqual(
      counts({ like: 1 }),
    )
  })

  it('equals the blobs summed naively, day by day, for random blobs on all four sides', async () => {
    const rand = prng(7)
    const kinds: InteractionKind[] = ['like', 'repost', 'reply', 'quote']
    const pool = Array.from({ length: 30 }, (_, i) => did(300 + i))
    for (const p of pool) h.appview.profiles.set(p, { did: p, handle: `${p.slice(-6)}.test` })
    type Want = { sent: KindCounts; received: KindCounts; partners: Map<string, Partner> }
    type Partner = { sent: KindCounts; received: KindCounts }
    const want = new Map<number, Want>()
    // Days old enough to be complete; none of the blobs written in beforeEach.
    for (const day of [today - 9, today - 8, today - 6, today - 5]) {
      const w: Want = { sent: counts(), received: counts(), partners: new Map() }
      want.set(day, w)
      for (const side of ['s', 'r', 'bs', 'br'] as const) {
        const rows: Rows = []
        // Consecutive records of one partner, as a roll-up writes them, and counts past 63.
        for (const p of pool) {
          if (rand() < 0.4) continue
          for (const k of kinds) {
            if (rand() < 0.5) rows.push([p, k, 1 + Math.floor(rand() * (rand() < 0.1 ? 500 : 20))])
          }
        }
        await writeBlob(h, side, day, rows)
        const dir = side.endsWith('s') ? 'sent' : 'received'
        for (const [p, k, n] of rows) {
          w[dir][k] += n
          const e = w.partners.get(p) ?? { sent: counts(), received: counts() }
          e[dir][k] += n
          w.partners.set(p, e)
        }
      }
    }
    const body = (await history(h, '?days=10&top=10')).json() as History
    const total = (e: Partner) => kinds.reduce((n, k) => n + e.sent[k] + e.received[k], 0)
    for (const [day, w] of want) {
      const got = body.history.find((x) => x.date === dateOf(day))!
      expect(got.complete).toBe(true)
      expect(got.sent).toEqual(w.sent)
      expect(got.received).toEqual(w.received)
      const ranked = [...w.partners.entries()].sort(([, x], [, y]) => total(y) - total(x))
      for (const p of got.partners) {
        expect({ sent: p.sent, received: p.received }).toEqual(w.partners.get(p.did))
      }
      expect(got.partners.map((p) => total(p))).toEqual(
        ranked.slice(0, 10).map(([, e]) => total(e)),
      )
    }
  })

  it('says which days are folded whole and which are partial', async () => {
    const body = (await history(h, '?days=5')).json() as History
    expect(body.completeThrough).toBe(dateOf(today - 3))
    expect(body.history.map((x) => [x.complete, x.foldedHours])).toEqual([
      [true, 24],
      [true, 24],
      [false, 6],
      [false, 0],
      [false, 0],
    ])
  })

  it('counts backfilled blobs on any day, rolled-up ones only up to the roll-up cursor’s day', async () => {
    // A rolled-up blob past the cursor's day cannot be the roll-up's: left out, as the long windows do.
    await writeBlob(h, 's', today, [[P1, 'like', 9]])
    await writeBlob(h, 'bs', today, [[P2, 'like', 4]])
    const body = (await history(h, '?days=1')).json() as History
    expect(body.history).toHaveLength(1)
    expect(body.history[0]?.sent).toEqual(counts({ like: 4 }))
    expect(body.history[0]?.partners.map((p) => p.did)).toEqual([P2])
  })

  it('keeps `top` partners per day', async () => {
    const day = (x: History) => x.history.find((d) => d.date === dateOf(today - 3))!
    expect(day((await history(h, '?top=1')).json()).partners.map((p) => p.did)).toEqual([P3])
    const none = day((await history(h, '?top=0')).json())
    expect(none.partners).toEqual([])
    expect(none.received).toEqual(counts({ repost: 4, quote: 70 }))
  })

  it('leaves opted-out, deleted and unknown partners out, and fills in from further down', async () => {
    await h.t.redis.sadd(h.t.schema.optOuts, P3)
    await h.t.redis.set(h.t.schema.accountPurged(P1), '1')
    const body = (await history(h, '?days=7&top=1')).json() as History
    const day = body.history.find((x) => x.date === dateOf(today - 3))!
    expect(day.partners.map((p) => p.did)).toEqual([P2])
    // The day's totals are the account's own counts: they still include its hidden partners.
    expect(day.received).toEqual(counts({ repost: 4, quote: 70 }))
    expect(JSON.stringify(body)).not.toContain(P3)
    expect(JSON.stringify(body)).not.toContain(P1)
    // The AppView has no profile for P2 (deleted): nobody is left to show.
    h.appview.profiles.delete(P2)
    await h.t.redis.del(h.t.schema.profile(P2))
    const again = (await history(h, '?days=7&top=1')).json() as History
    expect(again.history.find((x) => x.date === dateOf(today - 3))?.partners).toEqual([])
  })

  it('answers 403 for an opted-out actor and 404 for a deleted one', async () => {
    await h.t.redis.sadd(h.t.schema.optOuts, A)
    const out = await history(h)
    expect(out.statusCode).toBe(403)
    expect(out.json().error).toBe('OptedOut')
    await h.t.redis.srem(h.t.schema.optOuts, A)
    await h.t.redis.set(h.t.schema.accountPurged(A), '1')
    const gone = await history(h)
    expect(gone.statusCode).toBe(404)
    expect(gone.json().error).toBe('AccountUnavailable')
    await h.t.redis.del(h.t.schema.accountPurged(A))
    // Not purged yet, but the AppView says it is gone: 404 as circles answer.
    h.appview.profiles.delete(A)
    await h.t.redis.del(h.t.schema.profile(A))
    expect((await history(h)).statusCode).toBe(404)
  })

  it('resolves a handle as the other routes do', async () => {
    const res = await h.app.inject('/v1/accounts/@alice.test/history?days=7')
    expect(res.statusCode).toBe(200)
    expect((res.json() as History).actor.did).toBe(A)
    expect((await h.app.inject('/v1/accounts/nobody.test/history')).statusCode).toBe(404)
  })

  it('rejects bad days and top with a 400 that says what is wrong', async () => {
    for (const q of ['days=0', 'days=91', 'days=abc', 'days=1.5', 'top=11', 'top=-1']) {
      const res = await history(h, `?${q}`)
      expect(res.statusCode, q).toBe(400)
      const msg = res.json().message as string
      expect(msg, q).toMatch(/querystring\/(days|top)/)
      expect(msg, q).toMatch(/an integer from/)
    }
    expect((await history(h, '?days=90')).json().history).toHaveLength(90)
    expect((await history(h, '?days=1')).json().history).toHaveLength(1)
    expect((await h.app.inject('/v1/accounts/did:plc:nope/history')).statusCode).toBe(400)
  })

  it('sends an ETag and answers 304 while nothing changed', async () => {
    const first = await history(h, '?days=7')
    const etag = first.headers.etag as string
    expect(etag).toMatch(/^"/)
    expect(first.headers['cache-control']).toBe('no-cache')
    const same = await history(h, '?days=7', { 'if-none-match': etag })
    expect(same.statusCode).toBe(304)
    expect(same.body).toBe('')
    await writeBlob(h, 'bs', today - 1, [[P4, 'reply', 2]])
    expect((await history(h, '?days=7', { 'if-none-match': etag })).statusCode).toBe(200)
  })

  it('is documented at /docs', async () => {
    const spec = (await h.app.inject('/docs/json')).json()
    const op = spec.paths['/v1/accounts/{actor}/history']?.get
    expect(op?.parameters.map((p: { name: string }) => p.name).sort()).toEqual([
      'actor',
      'days',
      'top',
    ])
  })
})
