import { cidForRecord } from '@atproto/repo'
import { DAY_MS, HOUR_MS, tidFromMs } from '@circles/core'
import { readRepo } from '@circles/repo-source'
import { makeTestRepo, prng, type TestRecord } from '@circles/testkit'
import { describe, expect, it } from 'vitest'
import { type Classified, classifyRecords } from '../src/classify.js'

// The fold reads a repo's records as their few fields, read from the bytes (`interactions()`); what it
// makes of them must be what it makes of the records decoded whole (`records()`), odd ones included.

const A = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
const LIKE = 'app.bsky.feed.like'
const REPOST = 'app.bsky.feed.repost'
const POST = 'app.bsky.feed.post'

async function history(n: number): Promise<TestRecord[]> {
  const random = prng(16)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T
  const now = Date.now()
  const partners = ['b', 'c', 'd', 'e', 'f', 'a'].map((c) => `did:plc:${c.repeat(24)}`)
  const ref = () => ({
    uri: `at://${pick(partners)}/${POST}/${tidFromMs(now - random() * 90 * DAY_MS)}`,
    cid: 'bafyreib2rxk3rybk',
  })
  const blob = { $type: 'blob', ref: await cidForRecord({ i: 1 }), mimeType: 'image/png', size: 1 }
  const odd = [
    { subject: 42 },
    { subject: 'at://x' },
    { subject: { uri: 7 } },
    { subject: { uri: 'at://did:plc:bbbbbbbbbbbbbbbbbbbbbbbb/x' } },
    { reply: 'r', text: 'x' },
    { reply: { root: ref() }, text: 'x' },
    { embed: [] },
    { embed: 'x' },
    { embed: { $type: 'app.bsky.embed.recordWithMedia', record: 'x' } },
    { embed: { $type: 'app.bsky.embed.record', record: ref() }, text: 7 },
    { embed: { $type: 'app.bsky.embed.record', record: { uri: blob.ref } } },
    { reply: { root: ref(), parent: ref() }, text: '😀 \u00e9', embed: { $type: 'x' } },
  ]
  const dates = (at: number) =>
    pick([
      new Date(at).toISOString(),
      new Date(at).toISOString(),
      new Date(at)
        .toISOString()
        .replace('.000Z', 'Z')
        .replace(/\.\d+Z$/, '+00:00'),
      'yesterday',
      5,
      undefined,
      '2024-02-30T00:00:00.000Z',
    ])
  const out: TestRecord[] = []
  for (let i = 0; i < n; i++) {
    const at = now - random() * 95 * DAY_MS + (random() < 0.1 ? 40 * HOUR_MS : 0)
    const rkey = random() < 0.02 ? `self${i}` : tidFromMs(at + pick([0, 60_000, -3 * DAY_MS]), i)
    const createdAt = dates(at)
    const x = random()
    const [collection, body]: [string, Record<string, unknown>] =
      x < 0.4
        ? [LIKE, { subject: ref() }]
        : x < 0.5
          ? [REPOST, { subject: ref() }]
          : x < 0.8
            ? [
                POST,
                pick([
                  { text: 'a reply ✨', reply: { root: ref(), parent: ref() } },
                  { text: 'caf\u00e9', embed: { $type: 'app.bsky.embed.record', record: ref() } },
                  {
                    text: 'both',
                    reply: { root: ref(), parent: ref() },
                    embed: {
                      $type: 'app.bsky.embed.recordWithMedia',
                      record: { $type: 'app.bsky.embed.record', record: ref() },
                      media: { $type: 'app.bsky.embed.images', images: [{ alt: '', image: blob }] },
                    },
                  },
                  { text: 'an image', embed: { $type: 'app.bsky.embed.images', images: [] } },
                  { text: 'plain', langs: ['en'] },
                ]),
              ]
            : x < 0.95
              ? [pick([LIKE, REPOST, POST]), pick(odd)]
              : ['app.bsky.graph.follow', { subject: pick(partners) }]
    const record: Record<string, unknown> = { $type: collection, ...body }
    if (createdAt !== undefined) record.createdAt = createdAt
    out.push({ collection, rkey, record })
  }
  return out
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}

function comparable(c: Classified) {
  const { days, ...rest } = c
  return { ...rest, rows: days.rows(), partners: days.keys() }
}

describe('classifyRecords over a repo', () => {
  it('makes of the fields read from the bytes what it makes of the records decoded whole', async () => {
    const repo = await makeTestRepo(await history(1500), A)
    const contents = await readRepo(once(repo.car), { did: A, signingKey: repo.signingKey })
    const now = Date.now()
    for (const liveSince of [null, now - 10 * DAY_MS]) {
      const o = { did: A, now, liveSince, retentionDays: 90 }
      const whole = classifyRecords(contents.records(), o)
      const read = classifyRecords(contents.interactions(), o)
      expect(comparable(read)).toEqual(comparable(whole))
      // The draws reach every outcome.
      expect(whole.live.length).toBeGreaterThan(5)
      expect(whole.dayEvents).toBeGreaterThan(500)
      expect(Object.keys(whole.rejected).length).toBeGreaterThanOrEqual(4)
      expect(whole.untimed).toBeGreaterThan(0)
      expect(whole.outOfRange).toBeGreaterThan(0)
    }
  })
})
