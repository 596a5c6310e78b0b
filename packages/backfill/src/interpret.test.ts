import {
  DAY_MS,
  type InteractionCreate,
  interpretOp,
  isValidTid,
  type OpResult,
  tidFromMs,
  tidTimestampMs,
} from '@circles/core'
import { prng } from '@circles/testkit'
import { describe, expect, it } from 'vitest'
import { classifyRecords, type RepoRecord } from './classify.js'
import { CreateInterpreter, recordFields, tidMsOf } from './interpret.js'

// The backfill's interpreter against core's interpretOp, record by record, over records like a real
// repo's and odd ones (malformed refs, handles, bad keys, odd texts), drawn from a seeded generator.

const A = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
const now = Date.now()

function generator(seed: number) {
  const random = prng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T
  const dids = [
    A,
    'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb',
    'did:plc:cccccccccccccccccccccccc',
    'did:web:example.com',
    'did:web:localhost%3A8080',
    'did:plc:SHOUTING234567abcdefghij',
    'did:plc:short',
    'did:plc:aaaaaaaaaaaaaaaaaaaaaaa1',
    'did:plc:aaaaaaaaaaaaaaaaaaaaaaa8',
    'did:plc:aaaaaaaaaaaaaaaaaaaaaaa{',
    'did:plc:aaaaaaaaaaaaaaaaaaaaaaaaa',
    'alice.bsky.social',
    'did:key:zQ3sh',
    '',
  ]
  const collections = [
    'app.bsky.feed.post',
    'app.bsky.feed.like',
    'x',
    '1bad.nsid',
    'a.b-c',
    'app.bsky.feed.pos',
  ]
  const rkeys = () =>
    pick([
      tidFromMs(now - random() * 100 * DAY_MS, Math.floor(random() * 1024)),
      tidFromMs(now - random() * 100 * DAY_MS, Math.floor(random() * 1024)),
      tidFromMs(now - random() * 100 * DAY_MS, Math.floor(random() * 1024)),
      tidFromMs(now - random() * 100 * DAY_MS, Math.floor(random() * 1024)),
      'self',
      '3jzfcijpj2z2a',
      'a.b:c~d_e-f',
      '..',
      '.',
      'bad/key',
      'has space',
      '',
      'k'.repeat(513),
    ])
  const partner = () => `did:plc:${'bcdefg'.charAt(Math.floor(random() * 6)).repeat(24)}`
  const good = () => `at://${partner()}/app.bsky.feed.post/${tidFromMs(now - random() * DAY_MS)}`
  const uri = () =>
    pick([
      good,
      good,
      good,
      good,
      good,
      good,
      () => `at://${pick(dids)}/${pick(collections)}/${rkeys()}`,
      () => `at://${pick(dids)}/${pick(collections)}/${rkeys()}`,
      () => `at://${pick(dids)}/${pick(collections)}`,
      () => `at://${pick(dids)}/${pick(collections)}/${rkeys()}/extra`,
      () => `https://${pick(dids)}/x/y`,
      () => `at://${pick(dids)}//`,
      () => 42,
      () => undefined,
    ])()
  const ref = () =>
    pick([
      () => ({ uri: uri(), cid: 'bafy' }),
      () => ({ uri: uri(), cid: 'bafy' }),
      () => ({ uri: uri(), cid: 'bafy' }),
      () => ({ uri: uri(), cid: 'bafy' }),
      () => ({ uri: uri(), cid: 'bafy' }),
      () => [uri()],
      () => null,
      () => 'at://x',
      () => undefined,
    ])()
  const text = () =>
    pick(['hi', '', 'caf\u00e9 \u2728 \ud83d\ude00', '\ud83d', '\ude00x', 7, undefined])
  const embed = () =>
    pick([
      () => undefined,
      () => ({ $type: 'app.bsky.embed.record', record: ref() }),
      () => ({ $type: 'app.bsky.embed.recordWithMedia', record: { record: ref() } }),
      () => ({ $type: 'app.bsky.embed.recordWithMedia', record: 'x' }),
      () => ({ $type: 'app.bsky.embed.images', images: [] }),
      () => 'embed',
      () => [],
    ])()
  const record = (collection: string): unknown =>
    pick([
      () =>
        collection === 'app.bsky.feed.post'
          ? { text: text(), reply: { parent: ref(), root: ref() }, embed: embed() }
          : { subject: ref() },
      () =>
        collection === 'app.bsky.feed.post'
          ? {
              text: text(),
              reply: pick([
                undefined,
                undefined,
                { parent: ref(), root: ref() },
                'r',
                { root: ref() },
              ]),
              embed: embed(),
            }
          : { subject: ref() },
      () => ({ subject: ref() }),
      () => null,
      () => [],
      () => 'record',
    ])()
  const op = () => {
    const collection = pick([
      'app.bsky.feed.like',
      'app.bsky.feed.repost',
      'app.bsky.feed.post',
      'app.bsky.feed.post',
      'app.bsky.graph.follow',
    ])
    const rkey = rkeys()
    // A commit time near the TID, or days off it.
    const base = isValidTid(rkey) ? tidTimestampMs(rkey) : now
    const commitTime = base + pick([0, 60_000, -599_999, 600_001, -3 * DAY_MS])
    return { collection, rkey, record: record(collection), commitTime }
  }
  return { op, pick, dids }
}

describe('tidMsOf', () => {
  it("is core's tidTimestampMs of a valid TID and NaN for any other key", () => {
    const g = generator(5)
    const keys = [
      '3jzfcijpj2z2a',
      'kzzzzzzzzzzzz',
      'jzzzzzzzzzzzz',
      '2222222222222',
      '3jzfcijpj2z2',
      '3JZFCIJPJ2Z2A',
    ]
    for (let i = 0; i < 2000; i++) keys.push(g.op().rkey)
    for (const k of keys) {
      expect(tidMsOf(k), k).toEqual(isValidTid(k) ? tidTimestampMs(k) : Number.NaN)
    }
  })
})

describe('CreateInterpreter', () => {
  it('gives what interpretOp gives for every create, record by record', () => {
    const seen = { events: 0, rejected: 0, self: 0 }
    for (const seed of [1, 2, 3]) {
      const g = generator(seed)
      for (const repo of [A, 'did:web:example.com', 'not a did']) {
        const interpreter = new CreateInterpreter(repo)
        for (let i = 0; i < 4000; i++) {
          const o = g.op()
          const want: OpResult = interpretOp({ repo, action: 'create', ...o })
          const events: InteractionCreate[] = []
          const rejected = interpreter.interpret(
            o.collection,
            o.rkey,
            tidMsOf(o.rkey),
            recordFields(o.record),
            o.commitTime,
            (kind, subject, time, chars) =>
              events.push({
                type: 'create',
                kind,
                author: repo,
                subject,
                rkey: o.rkey,
                time,
                chars,
              }),
          )
          expect({ events, rejected, self: interpreter.self }, JSON.stringify(o)).toEqual({
            events: want.events,
            rejected: want.rejected,
            self: want.self,
          })
          seen.events += events.length
          seen.rejected += rejected ? 1 : 0
          seen.self += interpreter.self
        }
      }
    }
    // The draws reach every outcome.
    expect(seen.events).toBeGreaterThan(500)
    expect(seen.rejected).toBeGreaterThan(1000)
    expect(seen.self).toBeGreaterThan(2)
  })

  it('sorts records as a classification through interpretOp does', () => {
    const g = generator(9)
    const records: RepoRecord[] = Array.from({ length: 5000 }, () => {
      const o = g.op()
      const createdAt = g.pick([new Date(o.commitTime).toISOString(), 'yesterday', 5, undefined])
      const record = o.record
      if (record !== null && typeof record === 'object' && !Array.isArray(record))
        Object.assign(record, { createdAt })
      return { collection: o.collection, rkey: o.rkey, record }
    })
    const options = { did: A, now, liveSince: now - 20 * DAY_MS, retentionDays: 90 }
    const c = classifyRecords(records, options)
    // The same records one by one through interpretOp, timed as classify times them.
    let events = 0
    let rejected = 0
    let self = 0
    for (const r of records) {
      const createdAt = (r.record as { createdAt?: unknown } | null)?.createdAt
      const parsed = typeof createdAt === 'string' ? Date.parse(createdAt) : Number.NaN
      const tid = isValidTid(r.rkey) ? tidTimestampMs(r.rkey) : null
      const commitTime = Number.isFinite(parsed) && parsed > 0 ? parsed : tid
      if (commitTime === null) continue
      const res = interpretOp({ repo: A, action: 'create', ...r, commitTime })
      events += res.events.length
      rejected += res.rejected ? 1 : 0
      self += res.self
    }
    const counted = c.live.length + c.dayEvents + c.liveCovered + c.outOfRange
    expect(counted).toBe(events)
    expect(Object.values(c.rejected).reduce((a, b) => a + b, 0)).toBe(rejected)
    expect(c.self).toBe(self)
    expect(events).toBeGreaterThan(100)
    expect(rejected).toBeGreaterThan(500)
  })
})
