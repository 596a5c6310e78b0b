import { describe, expect, it } from 'vitest'
import {
  accountFrame,
  commitFrame,
  didOf,
  errorFrame,
  identityFrame,
  infoFrame,
  like,
  post,
  syntheticCorpus,
} from '../test/frames.js'
import { decodeFrameStock } from '../test/stock-decoder.js'
import { decodeFrame } from './fast-decoder.js'
import type { FrameResult } from './frame-result.js'

const NOW = Date.parse('2026-11-02T00:00:00Z')
const A = didOf(1)
const B = didOf(2)
const TID = '3l2xyzabcde22'

function comparable(r: FrameResult) {
  return { seq: r.seq, events: r.events, skipped: r.skipped, self: r.self, n: r.interactions }
}

describe('fast decoder yields exactly what the stock skyware path yields', () => {
  it('on a synthetic corpus of 3000 frames', async () => {
    const frames = syntheticCorpus(3000, 7)
    let events = 0
    for (const f of frames) {
      const fast = decodeFrame(f, NOW)
      const stock = await decodeFrameStock(f, NOW)
      expect(comparable(fast)).toEqual(comparable(stock))
      events += fast.events.length
    }
    // The corpus is not trivially empty: most frames carry an interaction.
    expect(events).toBeGreaterThan(2000)
  })

  it('keeps op order within a commit (re-like = delete then create)', async () => {
    const f = commitFrame(5, A, [
      { action: 'delete', path: `app.bsky.feed.like/3l2aaaaaaaa22` },
      { action: 'create', path: `app.bsky.feed.like/${TID}`, record: like(B) },
    ])
    const fast = decodeFrame(f, NOW)
    expect(fast.events.map((e) => e.type)).toEqual(['delete', 'create'])
    expect(comparable(fast)).toEqual(comparable(await decodeFrameStock(f, NOW)))
  })

  it('drops a create whose block is missing, like the stock client', async () => {
    const f = commitFrame(
      6,
      A,
      [
        { action: 'create', path: `app.bsky.feed.like/${TID}`, record: like(B) },
        { action: 'create', path: `app.bsky.feed.post/${TID}`, record: post({ replyTo: B }) },
      ],
      { omitBlocks: [0] },
    )
    const fast = decodeFrame(f, NOW)
    expect(fast.events).toHaveLength(1)
    expect(fast.events[0]).toMatchObject({ type: 'create', kind: 'reply', subject: B })
    expect(comparable(fast)).toEqual(comparable(await decodeFrameStock(f, NOW)))
  })

  it('yields nothing for a commit without blocks, like the stock client', async () => {
    const f = commitFrame(7, A, [{ action: 'delete', path: `app.bsky.feed.like/${TID}` }], {
      emptyBlocks: true,
    })
    expect(decodeFrame(f, NOW)).toMatchObject({ kind: 'commit', seq: 7, events: [] })
    expect(comparable(decodeFrame(f, NOW))).toEqual(comparable(await decodeFrameStock(f, NOW)))
  })

  it('maps identity, account and info frames like the stock path', async () => {
    for (const f of [
      identityFrame(8, A, 'Alice.Example.com'),
      identityFrame(9, 'not-a-did', 'x.com'),
      accountFrame(10, A, false, 'takendown'),
      accountFrame(11, A, true),
      infoFrame('OutdatedCursor', 'too old'),
    ]) {
      expect(comparable(decodeFrame(f, NOW))).toEqual(comparable(await decodeFrameStock(f, NOW)))
    }
    expect(decodeFrame(identityFrame(8, A, 'Alice.Example.com'), NOW).events[0]).toMatchObject({
      type: 'identity',
      did: A,
      handle: 'alice.example.com',
    })
    expect(decodeFrame(infoFrame('OutdatedCursor'), NOW)).toMatchObject({
      kind: 'info',
      seq: null,
      info: { name: 'OutdatedCursor' },
    })
  })
})

describe('decodeFrame on bad input', () => {
  it('names error frames, which skyware reports only as an invalid header', async () => {
    const f = errorFrame('FutureCursor', 'Cursor in the future.')
    expect(decodeFrame(f, NOW)).toMatchObject({
      kind: 'error',
      seq: null,
      error: { error: 'FutureCursor', message: 'Cursor in the future.' },
    })
    expect((await decodeFrameStock(f, NOW)).kind).toBe('malformed')
  })

  it('counts garbage and truncated frames instead of throwing', () => {
    const good = commitFrame(12, A, [
      { action: 'create', path: `app.bsky.feed.like/${TID}`, record: like(B) },
    ])
    expect(decodeFrame(new Uint8Array([0xff, 0x00, 0x13]), NOW).kind).toBe('malformed')
    expect(decodeFrame(new Uint8Array(0), NOW).kind).toBe('malformed')
    for (const cut of [1, 10, 50, good.length - 40, good.length - 1]) {
      const r = decodeFrame(good.subarray(0, cut), NOW)
      expect(r.kind).toBe('malformed')
      expect(r.events).toEqual([])
    }
  })

  it('skips a commit whose CAR is corrupt, keeping its seq', () => {
    const f = commitFrame(
      13,
      A,
      [{ action: 'create', path: `app.bsky.feed.like/${TID}`, record: like(B) }],
      { truncateCar: 5 },
    )
    const r = decodeFrame(f, NOW)
    expect(r).toMatchObject({ kind: 'commit', seq: 13, events: [], skipped: ['malformed_car'] })
  })

  it('rejects malformed ops by reason and keeps the valid ones', () => {
    const f = commitFrame(14, A, [
      { action: 'create', path: `app.bsky.feed.like/${TID}`, record: { subject: 'x' } },
      { action: 'create', path: 'app.bsky.feed.like/bad key', record: like(B) },
      { action: 'create', path: `app.bsky.feed.like/${TID}`, record: like(A) },
      { action: 'create', path: `app.bsky.feed.repost/${TID}`, record: like(B) },
    ])
    const r = decodeFrame(f, NOW)
    expect(r.skipped).toEqual(['invalid_subject', 'invalid_rkey'])
    expect(r.self).toBe(1)
    expect(r.events).toEqual([
      {
        type: 'create',
        kind: 'repost',
        author: A,
        subject: B,
        rkey: TID,
        time: r.events[0]?.time,
        chars: 0,
      },
    ])
  })
})

describe('decodeRecord (projection) gives interpretOp what a full decode gives', () => {
  const uri = `at://${B}/app.bsky.feed.post/3l2aaaaaaaa22`
  const records: unknown[] = [
    like(B),
    post({ replyTo: B, quote: A, media: true, text: 'héllo 👋🏽 wörld' }),
    post({ quote: B }),
    post({ text: 'plain' }),
    { subject: 'at://not/an/object' },
    { subject: [uri] },
    { subject: { uri: 42, cid: 'x' } },
    { subject: { uri, extra: { deep: [1, 2, { x: null }] } }, createdAt: 5 },
    { reply: null, text: 'x' },
    { reply: { parent: { uri }, root: { uri } }, text: 7 },
    { reply: { parent: 'nope' } },
    { embed: { $type: 'app.bsky.embed.record', record: 'nope' } },
    { embed: { $type: 'app.bsky.embed.recordWithMedia', record: { record: { uri } } }, text: '' },
    {
      embed: { $type: 'app.bsky.embed.images', images: [{ alt: 'a' }] },
      reply: { parent: { uri } },
    },
    { embed: [], text: 'x' },
    { facets: [{ index: { byteStart: 0 } }], langs: ['en'], text: 'x', reply: { parent: { uri } } },
    [1, 2, 3],
    'a string',
    0,
    null,
    {},
  ]
  it.each(records.map((r, i) => [i, r]))('record %i', async (_, record) => {
    for (const collection of ['app.bsky.feed.like', 'app.bsky.feed.repost', 'app.bsky.feed.post']) {
      const f = commitFrame(20, A, [{ action: 'create', path: `${collection}/${TID}`, record }])
      expect(comparable(decodeFrame(f, NOW))).toEqual(comparable(await decodeFrameStock(f, NOW)))
    }
  })
})

describe('opt-out records: blocks of the service account and profile self-labels', () => {
  const SERVICE = didOf(99)
  const opts = { serviceDid: SERVICE }
  const labels = (...vals: unknown[]) => ({ $type: 'x', values: vals.map((val) => ({ val })) })
  const profile = (record: unknown) => ({ $type: 'app.bsky.actor.profile', ...(record as object) })

  it('pass on as block and label events, as the stock path maps them, and nothing else', async () => {
    const f = commitFrame(9, A, [
      { action: 'create', path: `app.bsky.graph.block/${TID}`, record: { subject: SERVICE } },
      { action: 'create', path: 'app.bsky.graph.block/3l2xyzabcde23', record: { subject: B } },
      { action: 'delete', path: 'app.bsky.graph.block/3l2xyzabcde24' },
      {
        action: 'update',
        path: 'app.bsky.actor.profile/self',
        record: profile({ displayName: 'A', labels: labels('!no-unauthenticated') }),
      },
      { action: 'create', path: `app.bsky.feed.like/${TID}`, record: like(B) },
    ])
    const fast = decodeFrame(f, NOW, opts)
    expect(fast.events.map((e) => e.type)).toEqual(['block', 'block', 'label', 'create'])
    expect(fast.events[0]).toMatchObject({ action: 'create', author: A, rkey: TID })
    expect(fast.events[1]).toMatchObject({ action: 'delete', rkey: '3l2xyzabcde24' })
    expect(fast.events[2]).toMatchObject({ did: A, on: true })
    expect(comparable(fast)).toEqual(comparable(await decodeFrameStock(f, NOW, opts)))
    // Without a service account, blocks are not read.
    expect(decodeFrame(f, NOW).events.map((e) => e.type)).toEqual(['label', 'create'])
  })

  it('a profile without the label, or deleted, is a label event that is off', async () => {
    const f = commitFrame(10, A, [
      {
        action: 'create',
        path: 'app.bsky.actor.profile/self',
        record: profile({ labels: labels('porn') }),
      },
      { action: 'delete', path: 'app.bsky.actor.profile/self' },
    ])
    const fast = decodeFrame(f, NOW, opts)
    expect(fast.events).toEqual([
      { type: 'label', did: A, on: false, time: expect.any(Number) },
      { type: 'label', did: A, on: false, time: expect.any(Number) },
    ])
    expect(comparable(fast)).toEqual(comparable(await decodeFrameStock(f, NOW, opts)))
  })

  it('malformed ones are counted and skipped, never fatal, as on the stock path', async () => {
    const f = commitFrame(11, A, [
      { action: 'create', path: `app.bsky.graph.block/${TID}`, record: { subject: 42 } },
      { action: 'update', path: 'app.bsky.actor.profile/self', record: profile({ labels: 'x' }) },
      {
        action: 'update',
        path: 'app.bsky.actor.profile/self',
        record: profile({ labels: { values: [3] } }),
      },
      {
        action: 'create',
        path: `app.bsky.feed.post/${TID}`,
        record: { ...(post({ text: 'x' }) as object), labels: labels('!no-unauthenticated') },
      },
    ])
    const fast = decodeFrame(f, NOW, opts)
    expect(fast.events).toEqual([])
    expect(fast.skipped).toEqual(['invalid_subject', 'invalid_labels', 'invalid_labels'])
    expect(comparable(fast)).toEqual(comparable(await decodeFrameStock(f, NOW, opts)))
  })
})

describe('posts for the bot (BOT_DID)', () => {
  const BOT = didOf(9)
  const mention = (did: string) => ({
    index: { byteStart: 0, byteEnd: 4 },
    features: [{ $type: 'app.bsky.richtext.facet#mention', did }],
  })
  const frame = () =>
    commitFrame(11, A, [
      {
        action: 'create',
        path: `app.bsky.feed.post/${TID}`,
        record: { ...post({ text: '@bot circle 30d', replyTo: B }), facets: [mention(BOT)] },
      },
      { action: 'create', path: 'app.bsky.feed.post/3l2xyzabcde23', record: post({ text: 'x' }) },
      {
        action: 'create',
        path: 'app.bsky.feed.post/3l2xyzabcde24',
        record: { ...post({ text: 'y' }), facets: [{ features: 'not a list' }] },
      },
    ])

  it('publishes a mention with its CID and thread root, as the stock path does', () => {
    const f = frame()
    const fast = decodeFrame(f, NOW, { serviceDid: null, botDid: BOT })
    expect(fast.mentions).toHaveLength(1)
    const m = fast.mentions?.[0]
    expect(m).toMatchObject({ author: A, rkey: TID, text: '@bot circle 30d', parent: m?.root?.uri })
    expect(m?.cid).toMatch(/^bafyrei[a-z2-7]{52}$/)
    expect(m?.root?.uri).toBe(`at://${B}/app.bsky.feed.post/3l2aaaaaaaa22`)
    // the interaction (a reply to B) is published as before
    expect(fast.events.map((e) => e.type)).toEqual(['create'])
    return decodeFrameStock(f, NOW, { serviceDid: null, botDid: BOT }).then((stock) => {
      expect(stock.mentions).toEqual(fast.mentions)
    })
  })

  it('publishes nothing for the bot when no bot is configured', () => {
    expect(decodeFrame(frame(), NOW).mentions).toBeNull()
  })
})
