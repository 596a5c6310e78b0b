import { describe, expect, it } from 'vitest'
import { classifyAddress, isPublicAddress } from './address.js'

describe('classifyAddress', () => {
  it.each([
    ['8.8.8.8', 'unicast'],
    ['1.1.1.1', 'unicast'],
    ['2606:4700:4700::1111', 'unicast'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['100.127.255.254', 'carrierGradeNat'],
    ['255.255.255.255', 'broadcast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['::ffff:8.8.8.8', 'unicast'],
    ['64:ff9b::7f00:1', 'rfc6052'],
    ['2002:7f00:1::', '6to4'],
    ['not an address', 'invalid'],
  ])('%s is %s', (address, range) => expect(classifyAddress(address)).toBe(range))

  it.each([
    ['8.8.8.8', true],
    ['2606:4700:4700::1111', true],
    ['::ffff:8.8.8.8', true],
    ['172.32.0.1', true],
    ['100.128.0.1', true],
    ['127.0.0.1', false],
    ['::ffff:127.0.0.1', false],
    ['100.64.0.1', false],
    ['fd00::1', false],
    // NAT64 and 6to4 can carry a private IPv4 inside, so the allow-list refuses them.
    ['64:ff9b::a00:1', false],
    ['2002:a00:1::', false],
    ['192.0.2.1', false],
    ['', false],
  ])('isPublicAddress(%j) is %s', (address, ok) => expect(isPublicAddress(address)).toBe(ok))
})
