import { BlockMap, cborToLex, cidForRecord } from '@atproto/repo'
import { describe, expect, it } from 'vitest'
import { fieldsOf, type InteractionFields, readFields } from './interaction-fields.js'

async function encode(value: unknown): Promise<Uint8Array> {
  const blocks = new BlockMap()
  const cid = await blocks.add(value as never)
  return blocks.get(cid) as Uint8Array
}

function read(bytes: Uint8Array): InteractionFields | null {
  const out = fieldsOf({})
  return readFields(bytes, 0, bytes.length, out) ? out : null
}

const POST = 'app.bsky.feed.post'
const uri = 'at://did:plc:bbbbbbbbbbbbbbbbbbbbbbbb/app.bsky.feed.post/3kabcdefghijk'
const ref = { uri, cid: 'bafyreib2rxk3rybk' }

describe('readFields', () => {
  it.each([
    [
      'a like',
      { $type: 'app.bsky.feed.like', subject: ref, createdAt: '2026-11-02T10:11:12.345Z' },
    ],
    ['a reply', { $type: POST, text: 'hi', reply: { root: ref, parent: ref }, createdAt: 'x' }],
    [
      'a quote',
      { $type: POST, text: 'café ✨ 😀', embed: { $type: 'app.bsky.embed.record', record: ref } },
    ],
    [
      'a quote with media',
      {
        $type: POST,
        text: '',
        embed: {
          $type: 'app.bsky.embed.recordWithMedia',
          record: { $type: 'app.bsky.embed.record', record: ref },
          media: { $type: 'app.bsky.embed.images', images: [] },
        },
      },
    ],
    ['odd refs', { subject: 42, reply: 'r', embed: [], text: 7, createdAt: 5 }],
    ['refs without a uri', { subject: { cid: 'x' }, reply: { root: ref }, embed: { $type: 'x' } }],
    ['a uri that is no string', { subject: { uri: [uri] }, reply: { parent: null } }],
    [
      'a media embed of no object',
      { embed: { $type: 'app.bsky.embed.recordWithMedia', record: 'x' } },
    ],
    ['a record embed without its record', { embed: { $type: 'app.bsky.embed.record' } }],
    ['dates Date.parse reads', { createdAt: '2024-02-30T00:00:00.000Z' }],
    ['an hour 24', { createdAt: '2024-01-01T24:00:00.000Z' }],
    ['a date with an offset', { createdAt: '2024-01-01T10:00:00+02:00' }],
    ['a date without ms', { createdAt: '2024-01-01T10:00:00Z' }],
    ['a minute 60', { createdAt: '2024-01-01T23:60:00.000Z' }],
    ['an old year', { createdAt: '0050-01-01T00:00:00.000Z' }],
    ['non-ASCII keys and nesting', { clé: { a: [1, -2, true, null, { b: 'ü' }] }, text: '日本語' }],
  ])('%s: as fieldsOf the decoded record', async (_name, value) => {
    const bytes = await encode(value)
    const fields = read(bytes)
    expect(fields).not.toBeNull()
    expect(fields).toEqual(fieldsOf(cborToLex(bytes)))
  })

  it('reads a record holding an image blob (a CID link) as lex-cbor decodes it', async () => {
    const blob = {
      $type: 'blob',
      ref: await cidForRecord({ i: 1 }),
      mimeType: 'image/jpeg',
      size: 1,
    }
    const value = {
      $type: POST,
      text: 'look',
      embed: {
        $type: 'app.bsky.embed.recordWithMedia',
        record: { $type: 'app.bsky.embed.record', record: ref },
        media: { $type: 'app.bsky.embed.images', images: [{ alt: '', image: blob }] },
      },
    }
    const bytes = await encode(value)
    expect(read(bytes)).toEqual(fieldsOf(cborToLex(bytes)))
    expect(read(bytes)?.quoted).toBe(uri)
  })

  it('gives up, for the whole decode, on a CID where a value is read', async () => {
    const link = await cidForRecord({ i: 1 })
    for (const value of [{ subject: link }, { subject: { uri: link } }, { text: link }]) {
      expect(read(await encode(value))).toBeNull()
    }
  })

  // Hand-made CBOR: what an encoder of DAG-CBOR never writes, but a repo may hold.
  const text = (s: string) => {
    const b = Buffer.from(s)
    if (b.length >= 24) throw new Error('short texts only')
    return [0x60 + b.length, ...b]
  }
  const map = (...entries: number[][]) =>
    new Uint8Array([0xa0 + entries.length / 2, ...entries.flat()])

  it.each([
    ['keys out of order', map(text('text'), text('a'), text('abc'), text('b'))],
    ['a repeated key', map(text('text'), text('a'), text('text'), text('b'))],
    ['a float', map(text('n'), [0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0])],
    ['a non-minimal length', map(text('n'), [0x78, 0x01, 0x61])],
    ['invalid UTF-8', map(text('text'), [0x62, 0xc3, 0x28])],
    ['an overlong form', map(text('text'), [0x62, 0xc0, 0xaf])],
    ['a U+FFFD', map(text('text'), [0x63, 0xef, 0xbf, 0xbd])],
    ['bytes', map(text('b'), [0x41, 0x00])],
    ['a __proto__ key', map(text('__proto__'), [0xf6])],
    ['undefined', map(text('u'), [0xf7])],
    ['excess bytes', new Uint8Array([...map(text('a'), [0xf6]), 0xf6])],
    ['a cut record', map(text('text'), [0x65, 0x61])],
    ['no map', new Uint8Array([0x80])],
  ])('gives up on %s', (_name, bytes) => {
    expect(read(bytes)).toBeNull()
  })

  it('takes the whole decode of what it gave up on as the same fields (the caller does)', async () => {
    const bytes = await encode({ subject: ref, createdAt: '2026-11-02T10:11:12.345Z' })
    const out = fieldsOf({})
    expect(readFields(bytes, 0, bytes.length, out)).toBe(true)
    expect(out.subject).toBe(uri)
    expect(out.createdAtMs).toBe(Date.parse('2026-11-02T10:11:12.345Z'))
  })
})
