import { describe, expect, it } from 'vitest'
import { keySlot } from './slot.js'

describe('keySlot', () => {
  it('matches the slots Redis Cluster documents', () => {
    // values from the Redis Cluster specification and CLUSTER KEYSLOT
    expect(keySlot('123456789')).toBe(0x31c3 % 16384)
    expect(keySlot('foo')).toBe(12182)
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'))
    // an empty {} does not count as a tag; the first { opens the tag
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar'))
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'))
  })
})
