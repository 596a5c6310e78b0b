import { describe, expect, it } from 'vitest'
import { addressBucket, requestBucket, UNKNOWN_BUCKET } from './client-address.js'

describe('addressBucket', () => {
  it('keeps IPv4, maps IPv4-mapped IPv6 to IPv4, and cuts IPv6 to its /64', () => {
    const cases: [string, string][] = [
      ['203.0.113.7', '203.0.113.7'],
      ['::ffff:203.0.113.7', '203.0.113.7'],
      ['::FFFF:cb00:7107', '203.0.113.7'],
      ['2001:db8::1', '2001:0db8:0000:0000::/64'],
      ['2001:DB8:1:2:3:4:5:6', '2001:0db8:0001:0002::/64'],
      ['2001:db8:1:2::', '2001:0db8:0001:0002::/64'],
      ['fe80::1%eth0', 'fe80:0000:0000:0000::/64'],
      ['::1', '0000:0000:0000:0000::/64'],
      ['::', '0000:0000:0000:0000::/64'],
      ['64:ff9b::192.0.2.33', '0064:ff9b:0000:0000::/64'],
    ]
    for (const [ip, bucket] of cases) expect(addressBucket(ip), ip).toBe(bucket)
  })

  it('refuses anything that is not an address', () => {
    for (const junk of [
      '',
      'localhost',
      '1.2.3.4:80',
      '1.2.3.256',
      '1.2.3',
      '2001:db8::1::2',
      '2001:db8:1:2:3:4:5:6:7',
      'g::1',
      '[::1]',
      ' 1.2.3.4',
      '1.2.3.4, 5.6.7.8',
      'a}{b*',
      '9'.repeat(100),
      undefined,
    ]) {
      expect(addressBucket(junk), String(junk)).toBeNull()
    }
  })

  it('falls back to the socket peer, then to one shared bucket', () => {
    expect(requestBucket({ ip: 'junk', socket: { remoteAddress: '10.0.0.1' } })).toBe('10.0.0.1')
    expect(requestBucket({ ip: 'junk', socket: {} })).toBe(UNKNOWN_BUCKET)
  })
})
