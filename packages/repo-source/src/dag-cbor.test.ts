import { BlockMap, cborToLex, cidForRecord } from '@atproto/repo'
import { describe, expect, it } from 'vitest'
import {
  BLOCK_MST,
  BLOCK_OTHER,
  BLOCK_RECORD,
  classifyBlock,
  decodeRecord,
  GENERIC,
  WantedTypes,
} from './dag-cbor.js'

async function encode(value: unknown): Promise<Uint8Array> {
  const blocks = new BlockMap()
  const cid = await blocks.add(value as never)
  return blocks.get(cid) as Uint8Array
}

const LIKE = 'app.bsky.feed.like'

describe('decodeRecord', () => {
  it.each([
    [
      'a like',
      { $type: LIKE, subject: { uri: 'at://did:plc:x/app.bsky.feed.post/1', cid: 'bafy' } },
    ],
    ['integers', { a: 0, b: 23, c: 24, d: 255, e: 256, f: 65_536, g: 2 ** 32, h: -1, i: -1000 }],
    ['largest safe integers', { a: Number.MAX_SAFE_INTEGER, b: -Number.MAX_SAFE_INTEGER }],
    ['booleans and null', { t: true, f: false, n: null }],
    ['nested arrays', { a: [[1, 2], [], ['x', { y: [true] }]] }],
    ['non-ASCII text and keys', { text: 'café ✨ 日本語 😀', clé: 'ü', 日: 1 }],
    ['long text', { text: 'x'.repeat(300) + 'é'.repeat(300) }],
    ['empty things', { s: '', a: [], m: {} }],
  ])('%s: as lex-cbor decodes it', async (_name, value) => {
    const bytes = await encode(value)
    const fast = decodeRecord(bytes)
    expect(fast).not.toBe(GENERIC)
    expect(fast).toEqual(cborToLex(bytes))
  })

  it('leaves CIDs and bytes inside a record to lex-cbor', async () => {
    const ref = await cidForRecord({ x: 1 })
    expect(decodeRecord(await encode({ $type: 'blob', ref, size: 1 }))).toBe(GENERIC)
    expect(decodeRecord(await encode({ b: new Uint8Array([1, 2]) }))).toBe(GENERIC)
  })

  it.each([
    ['a float', 'a161 61 fb3ff8000000000000'],
    ['a non-minimal length', 'a161 61 7801 78'],
    ['a non-minimal integer', 'a161 61 1817'],
    ['a duplicate key', 'a2 6161 01 6161 02'],
    ['keys out of DAG-CBOR order', 'a2 6162 01 6161 02'],
    ['a __proto__ key', 'a1 695f5f70726f746f5f5f a0'],
    ['invalid UTF-8', 'a161 61 62c328'],
    ['an integer past 2^53', 'a161 61 1b0020000000000001'],
    ['undefined', 'a161 61 f7'],
    ['cut short', 'a2 6161 01 6162'],
    ['trailing bytes', 'a161 61 01 00'],
    ['an indefinite length', 'a161 61 9f01ff'],
  ])('%s: generic (lex-cbor decides)', (_name, hex) => {
    expect(decodeRecord(Buffer.from(hex.replaceAll(' ', ''), 'hex'))).toBe(GENERIC)
  })

  it('does not confuse a cached ASCII key with other bytes', () => {
    // 'é' as one latin1 byte (invalid UTF-8) must not come back as the cached key 'é'.
    expect(decodeRecord(Buffer.from('a162c3a901', 'hex'))).toEqual({ é: 1 })
    expect(decodeRecord(Buffer.from('a161e901', 'hex'))).toBe(GENERIC)
  })
})

describe('classifyBlock', () => {
  const wanted = new WantedTypes([LIKE, 'app.bsky.feed.post'])
  const classify = async (value: unknown) => {
    const bytes = await encode(value)
    return classifyBlock(bytes, 0, bytes.length, wanted)
  }

  it('keeps records of the wanted types, wherever $type sits among the keys', async () => {
    expect(await classify({ $type: LIKE, subject: {} })).toBe(BLOCK_RECORD)
    // 'text' sorts before '$type' in DAG-CBOR's key order.
    expect(await classify({ text: 'hi', $type: 'app.bsky.feed.post', reply: {} })).toBe(
      BLOCK_RECORD,
    )
  })

  it('drops other types, records without a type, and what is not a map', async () => {
    expect(await classify({ $type: 'app.bsky.graph.follow', subject: 'did:plc:x' })).toBe(
      BLOCK_OTHER,
    )
    expect(await classify({ $type: 'app.bsky.feed.likes' })).toBe(BLOCK_OTHER)
    expect(await classify({ subject: 'x' })).toBe(BLOCK_OTHER)
    expect(await classify(['a'])).toBe(BLOCK_OTHER)
    expect(classifyBlock(Buffer.from('a26161', 'hex'), 0, 3, wanted)).toBe(BLOCK_OTHER)
  })

  it('recognises MST nodes by their keys', async () => {
    expect(await classify({ e: [], l: null })).toBe(BLOCK_MST)
  })
})
