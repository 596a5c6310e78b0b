import { describe, expect, it } from 'vitest'
import { foldName, NAME_MAX_CHARS, nameMembers } from './profile-names.js'

const D = 'did:plc:abcdefghijklmnopqrstuvwx'

describe('foldName', () => {
  it.each([
    ['Alice', 'alice'],
    ['  Ålice   Anders ', 'ålice anders'],
    ['ＡＢＣ', 'abc'], // full-width letters: NFKC
    ['a\u0000b\tc\nd', 'a b c d'], // no control character reaches a member (\0 separates the DID)
    ['x'.repeat(100), 'x'.repeat(NAME_MAX_CHARS)],
    ['   ', ''],
  ])('%j -> %j', (input, want) => expect(foldName(input)).toBe(want))
})

describe('nameMembers', () => {
  it('writes the handle (lowercased) and the folded display name, each with the DID', () => {
    expect(nameMembers({ did: D, handle: 'Alice.Test', displayName: 'Alice A' })).toEqual([
      `h:alice.test\0${D}`,
      `n:alice a\0${D}`,
    ])
  })
  it('leaves out what is missing or blank', () => {
    expect(nameMembers({ did: D, handle: 'alice.test', displayName: ' \n ' })).toEqual([
      `h:alice.test\0${D}`,
    ])
    expect(nameMembers({ did: D })).toEqual([])
  })
})
