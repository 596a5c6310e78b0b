import { describe, expect, it } from 'vitest'
import {
  isValidDid,
  isValidHandle,
  isValidRkey,
  isValidTid,
  parseAtUri,
  tidFromMs,
  tidTimestampMs,
} from './syntax.js'

describe('syntax', () => {
  it.each([
    ['did:plc:ewvi7nxzyoun6zhxrhs64oiz', true],
    ['did:web:example.com', true],
    ['did:web:localhost%3A2583', false], // no TLD: not a hostname the network resolves
    ['did:web:pds.example.com%3A2583', true],
    ['did:plc:EWVI7NXZYOUN6ZHXRHS64OIZ', false],
    ['did:plc:ewvi7nxzyoun6zhxrhs64oi', false],
    ['did:plc:ewvi7nxzyoun6zhxrhs64oiz}', false],
    ['did:web:example.com/path', false],
    ['did:key:z6Mkabc', false],
    ['did:plc:ewvi7nxzyoun6zhxrhs64oiz\n', false],
    [42, false],
    [null, false],
  ])('isValidDid(%j) is %s', (value, ok) => expect(isValidDid(value)).toBe(ok))

  it.each([
    ['3l3qo2vutsw2b', true],
    ['self', false],
    ['3l3qo2vutsw2', false],
    ['kl3qo2vutsw2b', false], // first character past j would set the top bit
  ])('isValidTid(%j) is %s', (value, ok) => expect(isValidTid(value)).toBe(ok))

  it.each([
    ['3l3qo2vutsw2b', true],
    ['self', true],
    ['a:b~c.d-e_f', true],
    ['.', false],
    ['..', false],
    ['a/b', false],
    ['a b', false],
    ['', false],
    ['x'.repeat(513), false],
  ])('isValidRkey(%j) is %s', (value, ok) => expect(isValidRkey(value)).toBe(ok))

  it.each([
    ['alice.bsky.social', true],
    ['alice.test', true],
    ['alice', false],
    ['-alice.test', false],
    ['alice.test\t', false],
  ])('isValidHandle(%j) is %s', (value, ok) => expect(isValidHandle(value)).toBe(ok))

  it('round-trips TID timestamps at millisecond precision', () => {
    for (const ms of [0, 1, 1_700_000_000_123, Date.parse('2026-11-22T03:00:00.999Z')]) {
      const tid = tidFromMs(ms, 513)
      expect(isValidTid(tid)).toBe(true)
      expect(tidTimestampMs(tid)).toBe(ms)
    }
  })

  it('agrees with a BigInt reference decode on real TIDs', () => {
    const S32 = '234567abcdefghijklmnopqrstuvwxyz'
    const reference = (tid: string) => {
      let n = 0n
      for (const c of tid) n = n * 32n + BigInt(S32.indexOf(c))
      return Number((n >> 10n) / 1000n)
    }
    for (const tid of ['3jzfcijpj2z2a', '3l3qo2vutsw2b', '3kzwpbxqlxs2y', '2222222222222']) {
      expect(tidTimestampMs(tid)).toBe(reference(tid))
    }
  })

  it('parses AT-URIs strictly', () => {
    expect(
      parseAtUri('at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vutsw2b'),
    ).toEqual({
      did: 'did:plc:ewvi7nxzyoun6zhxrhs64oiz',
      collection: 'app.bsky.feed.post',
      rkey: '3l3qo2vutsw2b',
    })
    expect(parseAtUri('at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post')).toBeNull()
    expect(parseAtUri('at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/a?b')).toBeNull()
    expect(parseAtUri('at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/not an nsid/a')).toBeNull()
    expect(parseAtUri({})).toBeNull()
  })
})
