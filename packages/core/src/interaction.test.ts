import { describe, expect, it } from 'vitest'
import { type InteractionEvent, interpretOp, type RepoOp } from './interaction.js'
import { tidFromMs } from './syntax.js'

const ALICE = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz'
const BOB = 'did:plc:z72i7hdynmk6r22z27h6tvur'
const CAROL = 'did:web:carol.example.com'
const T = Date.parse('2026-11-20T12:00:00.000Z')
const RKEY = tidFromMs(T - 1500)
const POST_URI = (did: string) => `at://${did}/app.bsky.feed.post/3l3qo2vutsw2b`
const CID = 'bafyreig2fjxi3rptqdgylg7e5hmjl6mcke7rn2b6cugzlqq3i4zu6rq52q'
const ref = (uri: string) => ({ uri, cid: CID })

function op(partial: Partial<RepoOp>): RepoOp {
  return {
    repo: ALICE,
    action: 'create',
    collection: 'app.bsky.feed.like',
    rkey: RKEY,
    commitTime: T,
    ...partial,
  }
}

const like = (subject: unknown) => ({
  $type: 'app.bsky.feed.like',
  subject,
  createdAt: '2026-11-20T11:59:58.000Z',
})
const post = (extra: Record<string, unknown>) => ({
  $type: 'app.bsky.feed.post',
  text: 'hello 👋 world',
  langs: ['en'],
  createdAt: '2026-11-20T11:59:58.000Z',
  ...extra,
})
const quoteEmbed = (uri: string) => ({ $type: 'app.bsky.embed.record', record: ref(uri) })
const quoteWithMedia = (uri: string) => ({
  $type: 'app.bsky.embed.recordWithMedia',
  record: { $type: 'app.bsky.embed.record', record: ref(uri) },
  media: { $type: 'app.bsky.embed.images', images: [] },
})
const create = (kind: string, subject: string, chars = 0) =>
  ({
    type: 'create',
    kind,
    author: ALICE,
    subject,
    rkey: RKEY,
    time: T - 1500,
    chars,
  }) as InteractionEvent

// 'hello 👋 world' is 13 code points (the emoji is one character, two UTF-16 units).
const CHARS = 13

describe('interpretOp', () => {
  const cases: [string, Partial<RepoOp>, InteractionEvent[], string?][] = [
    ['like', { record: like(ref(POST_URI(BOB))) }, [create('like', BOB)]],
    [
      'like via a repost (newer records carry `via`)',
      {
        record: {
          ...like(ref(POST_URI(BOB))),
          via: ref(`at://${CAROL}/app.bsky.feed.repost/3l3qo2vutsw2c`),
        },
      },
      [create('like', BOB)],
    ],
    [
      'repost',
      {
        collection: 'app.bsky.feed.repost',
        record: { $type: 'app.bsky.feed.repost', subject: ref(POST_URI(CAROL)) },
      },
      [create('repost', CAROL)],
    ],
    [
      'reply: subject is the parent author, not the root author',
      {
        collection: 'app.bsky.feed.post',
        record: post({ reply: { root: ref(POST_URI(CAROL)), parent: ref(POST_URI(BOB)) } }),
      },
      [create('reply', BOB, CHARS)],
    ],
    [
      'quote (embed.record)',
      { collection: 'app.bsky.feed.post', record: post({ embed: quoteEmbed(POST_URI(BOB)) }) },
      [create('quote', BOB, CHARS)],
    ],
    [
      'quote with media (embed.recordWithMedia)',
      {
        collection: 'app.bsky.feed.post',
        record: post({ embed: quoteWithMedia(POST_URI(CAROL)) }),
      },
      [create('quote', CAROL, CHARS)],
    ],
    [
      'reply that quotes yields both',
      {
        collection: 'app.bsky.feed.post',
        record: post({
          reply: { root: ref(POST_URI(BOB)), parent: ref(POST_URI(BOB)) },
          embed: quoteEmbed(POST_URI(CAROL)),
        }),
      },
      [create('reply', BOB, CHARS), create('quote', CAROL, CHARS)],
    ],
    [
      'self-reply that quotes someone keeps only the quote',
      {
        collection: 'app.bsky.feed.post',
        record: post({
          reply: { root: ref(POST_URI(ALICE)), parent: ref(POST_URI(ALICE)) },
          embed: quoteEmbed(POST_URI(BOB)),
        }),
      },
      [create('quote', BOB, CHARS)],
    ],
    ['plain post', { collection: 'app.bsky.feed.post', record: post({}) }, []],
    [
      'post with images only',
      {
        collection: 'app.bsky.feed.post',
        record: post({ embed: { $type: 'app.bsky.embed.images', images: [] } }),
      },
      [],
    ],
    ['self-like', { record: like(ref(POST_URI(ALICE))) }, []],
    ['other collection', { collection: 'app.bsky.graph.follow', record: { subject: BOB } }, []],
    [
      'update of a post changes nothing',
      { action: 'update', collection: 'app.bsky.feed.post', record: post({}) },
      [],
    ],
    [
      'delete of a like',
      { action: 'delete', record: undefined },
      [{ type: 'delete', record: 'like', author: ALICE, rkey: RKEY, time: T }],
    ],
    [
      'delete of a repost',
      { action: 'delete', collection: 'app.bsky.feed.repost' },
      [{ type: 'delete', record: 'repost', author: ALICE, rkey: RKEY, time: T }],
    ],
    [
      'delete of a post',
      { action: 'delete', collection: 'app.bsky.feed.post' },
      [{ type: 'delete', record: 'post', author: ALICE, rkey: RKEY, time: T }],
    ],
    // malformed shapes, as a real firehose delivers them now and then
    [
      'repo is not a DID',
      { repo: 'alice.bsky.social', record: like(ref(POST_URI(BOB))) },
      [],
      'invalid_repo',
    ],
    [
      'repo with an unknown DID method',
      { repo: 'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme' },
      [],
      'invalid_repo',
    ],
    ['rkey with a slash', { rkey: 'a/b', record: like(ref(POST_URI(BOB))) }, [], 'invalid_rkey'],
    ['rkey `..`', { rkey: '..', record: like(ref(POST_URI(BOB))) }, [], 'invalid_rkey'],
    ['no record', { record: undefined }, [], 'invalid_record'],
    ['record is an array', { record: [] }, [], 'invalid_record'],
    ['like without subject', { record: { $type: 'app.bsky.feed.like' } }, [], 'invalid_subject'],
    [
      'like subject uri is a number',
      { record: like({ uri: 42, cid: CID }) },
      [],
      'invalid_subject',
    ],
    [
      'like subject uri with a handle authority',
      { record: like(ref('at://bob.bsky.social/app.bsky.feed.post/3l3qo2vutsw2b')) },
      [],
      'invalid_subject',
    ],
    [
      'like subject uri not at://',
      { record: like(ref('https://bsky.app/profile/bob')) },
      [],
      'invalid_subject',
    ],
    [
      'like subject uri with a key injection',
      { record: like(ref(`at://${BOB}}:x/app.bsky.feed.post/a`)) },
      [],
      'invalid_subject',
    ],
    [
      'like subject uri with too many segments',
      { record: like(ref(`${POST_URI(BOB)}/extra`)) },
      [],
      'invalid_subject',
    ],
    [
      'reply is a string',
      { collection: 'app.bsky.feed.post', record: post({ reply: 'x' }) },
      [],
      'invalid_reply',
    ],
    [
      'reply without parent',
      { collection: 'app.bsky.feed.post', record: post({ reply: { root: ref(POST_URI(BOB)) } }) },
      [],
      'invalid_reply',
    ],
    [
      'quote embed without record',
      {
        collection: 'app.bsky.feed.post',
        record: post({ embed: { $type: 'app.bsky.embed.record' } }),
      },
      [],
      'invalid_embed',
    ],
    [
      'recordWithMedia with a bad inner uri',
      { collection: 'app.bsky.feed.post', record: post({ embed: quoteWithMedia('at://nope') }) },
      [],
      'invalid_embed',
    ],
    [
      'embed is null',
      { collection: 'app.bsky.feed.post', record: post({ embed: null }) },
      [],
      'invalid_embed',
    ],
    [
      'reply with non-string text',
      {
        collection: 'app.bsky.feed.post',
        record: post({ text: 7, reply: { root: ref(POST_URI(BOB)), parent: ref(POST_URI(BOB)) } }),
      },
      [],
      'invalid_record',
    ],
  ]

  it.each(cases)('%s', (_name, partial, events, rejected) => {
    const result = interpretOp(op(partial))
    expect(result.events).toEqual(events)
    expect(result.rejected).toBe(rejected)
  })

  it('counts self-interactions it drops', () => {
    expect(interpretOp(op({ record: like(ref(POST_URI(ALICE))) })).self).toBe(1)
    const both = post({
      reply: { root: ref(POST_URI(ALICE)), parent: ref(POST_URI(ALICE)) },
      embed: quoteEmbed(POST_URI(ALICE)),
    })
    expect(interpretOp(op({ collection: 'app.bsky.feed.post', record: both })).self).toBe(2)
  })

  it('takes the event time from the TID when it is near the commit time', () => {
    expect(interpretOp(op({ record: like(ref(POST_URI(BOB))) })).events[0]?.time).toBe(T - 1500)
  })

  it('falls back to the commit time for a TID far from it, whatever createdAt says', () => {
    const rkey = tidFromMs(T - 3 * 86_400_000) // backdated by three days
    const e = interpretOp(
      op({ rkey, record: { ...like(ref(POST_URI(BOB))), createdAt: '2020-01-01T00:00:00Z' } }),
    )
    expect(e.events[0]?.time).toBe(T)
    const future = interpretOp(
      op({ rkey: tidFromMs(T + 3_600_000), record: like(ref(POST_URI(BOB))) }),
    )
    expect(future.events[0]?.time).toBe(T)
  })

  it('falls back to the commit time for a non-TID rkey', () => {
    const e = interpretOp(op({ rkey: 'self', record: like(ref(POST_URI(BOB))) }))
    expect(e.events[0]).toMatchObject({ rkey: 'self', time: T })
  })
})
