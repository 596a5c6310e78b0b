import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { open, SealError, seal } from './seal.js'

describe('seal', () => {
  const key = randomBytes(32)

  it('round-trips and never shows the plain text', () => {
    const sealed = seal(key, '{"accessJwt":"secret-token"}', 'did:plc:abc')
    expect(sealed).not.toContain('secret')
    expect(Buffer.from(sealed, 'base64').toString('latin1')).not.toContain('secret')
    expect(open(key, sealed, 'did:plc:abc')).toBe('{"accessJwt":"secret-token"}')
  })

  it('uses a fresh IV each time', () => {
    expect(seal(key, 'x', 'a')).not.toBe(seal(key, 'x', 'a'))
  })

  it('refuses another key, another place, altered bytes and garbage', () => {
    const sealed = seal(key, 'tokens', 'did:plc:abc')
    expect(() => open(randomBytes(32), sealed, 'did:plc:abc')).toThrow(SealError)
    expect(() => open(key, sealed, 'did:plc:other')).toThrow(SealError)
    const bytes = Buffer.from(sealed, 'base64')
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1
    expect(() => open(key, bytes.toString('base64'), 'did:plc:abc')).toThrow(SealError)
    expect(() => open(key, 'bm90IHNlYWxlZA==', 'did:plc:abc')).toThrow(SealError)
  })
})
