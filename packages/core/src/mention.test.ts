import { describe, expect, it } from 'vitest'
import { decodeMention, encodeMention, type MentionEvent, mentionOf } from './mention.js'

const BOT = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz'
const ALICE = 'did:plc:z72i7hdynmk6r22z27h6tvur'
const CID = 'bafyreig2fjxi3rptqdgylg7e5hmjl6mcke7rn2b6cugzlqq3i4zu6rq52q'
const ROOT = { uri: `at://${ALICE}/app.bsky.feed.post/3l3qo2vutsw2b`, cid: CID }
const mention = (did: string) => ({
  index: { byteStart: 0, byteEnd: 4 },
  features: [{ $type: 'app.bsky.richtext.facet#mention', did }],
})
const post = (record: unknown) => ({
  author: ALICE,
  rkey: '3l3qo2vutsw2c',
  cid: CID,
  record,
  time: Date.now(),
})

describe('mentionOf', () => {
  it('finds a mention of the bot in the post facets, with the thread root of a reply', () => {
    const p = post({ text: '@bot circle 30d', facets: [mention(BOT)] })
    expect(mentionOf(p, BOT)).toEqual({
      ...p,
      record: undefined,
      root: null,
      parent: null,
      text: '@bot circle 30d',
    })
    const reply = post({ text: 'x', facets: [mention(BOT)], reply: { root: ROOT, parent: ROOT } })
    expect(mentionOf(reply, BOT)?.root).toEqual(ROOT)
    expect(mentionOf(reply, BOT)?.parent).toEqual(ROOT.uri)
  })

  it("finds the bot's own posts (its replies), without a mention", () => {
    const own = {
      ...post({ text: 'your circle', reply: { root: ROOT, parent: ROOT } }),
      author: BOT,
    }
    expect(mentionOf(own, BOT)).toMatchObject({ author: BOT, parent: ROOT.uri })
  })

  it.each([
    ['no facets', { text: '@bot circle' }],
    ['another account', { text: 'x', facets: [mention(ALICE)] }],
    [
      'a link facet',
      { facets: [{ features: [{ $type: 'app.bsky.richtext.facet#link', uri: BOT }] }] },
    ],
    ['facets not a list', { facets: { features: [] } }],
    ['features not a list', { facets: [{ features: 'x' }] }],
    ['a null feature', { facets: [{ features: [null] }] }],
    ['a malformed reply root', { facets: [mention(BOT)], reply: { root: { uri: 'x', cid: CID } } }],
    ['a reply without parent', { facets: [mention(BOT)], reply: { root: ROOT } }],
    ['not a record', 'text'],
    // A quote of a post that mentions the bot mentions nobody itself.
    ['a mention inside a quote', { embed: { record: { facets: [mention(BOT)] } } }],
  ])('%s -> null', (_, record) => {
    expect(mentionOf(post(record), BOT)).toBeNull()
  })
})

describe('mention lines', () => {
  const m: MentionEvent = {
    author: ALICE,
    rkey: '3l3qo2vutsw2c',
    cid: CID,
    root: ROOT,
    parent: ROOT.uri,
    time: Date.now(),
    text: 'circle\tno likes\nplease "now"',
  }

  it('round-trip, text with tabs and newlines included', () => {
    const line = encodeMention(m)
    expect(line.split('\t')).toHaveLength(8)
    expect(line).not.toContain('\n')
    expect(decodeMention(line)).toEqual(m)
    const top = { ...m, root: null, parent: null }
    expect(decodeMention(encodeMention(top))).toEqual(top)
  })

  it.each([
    '',
    'a\tb',
    encodeMention(m).replace(ALICE, 'not-a-did'),
    encodeMention(m).replace('"circle', 'circle'),
    encodeMention({ ...m, text: '' }).replace('""', '42'),
    encodeMention(m).replace(String(m.time), 'soon'),
  ])('refuses %j', (line) => {
    expect(decodeMention(line)).toBeNull()
  })
})
