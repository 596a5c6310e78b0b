import ipaddr from 'ipaddr.js'

/**
 * The ipaddr.js range of an address ('unicast' for an ordinary public one; 'loopback', 'private',
 * 'linkLocal', 'uniqueLocal', 'carrierGradeNat', 'unspecified', 'multicast', 'reserved', '6to4', ...), or
 * 'invalid'. IPv4-mapped IPv6 (`::ffff:127.0.0.1`) is classified as the IPv4 address it carries.
 */
export function classifyAddress(address: string): string {
  if (!ipaddr.isValid(address)) return 'invalid'
  return ipaddr.process(address).range()
}

/**
 * Only plain public unicast passes. An allow-list rather than a block-list of the named ranges: the
 * translation ranges (6to4, Teredo, NAT64) can carry a private IPv4 inside, and a range ipaddr.js learns
 * later is refused until someone looks at it.
 */
export function isPublicAddress(address: string): boolean {
  return classifyAddress(address) === 'unicast'
}
