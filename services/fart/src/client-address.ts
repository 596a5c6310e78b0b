import { isIP } from 'node:net'

// The client address a rate-limit count belongs to, checked before it becomes part of a Redis key. With a
// proxy trusted, `req.ip` comes from X-Forwarded-For, text the client may have written: anything that is not
// an IP address is refused here. IPv6 clients are counted by their /64: one subscriber usually gets a whole
// /64 (RFC 6177) and can pick any of its 2^64 addresses, so a per-address count would be no limit at all.

/** The bucket of an address that is not one (only when the socket is gone as well). */
export const UNKNOWN_BUCKET = '0.0.0.0'

/** The 8 groups of an IPv6 address as numbers, or null; accepts `::`, an IPv4 tail and a zone id. */
function ipv6Groups(text: string): number[] | null {
  const addr = text.split('%')[0]!
  let tail: number[] = []
  let head = addr
  const dotted = /(?:^|:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(addr)
  if (dotted) {
    const v4 = dotted[1]!.split('.').map(Number)
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!]
    head = addr.slice(0, addr.length - dotted[1]!.length)
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1)
  }
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)))
  const gap = head.indexOf('::')
  const left = parse(gap < 0 ? head : head.slice(0, gap))
  const right = gap < 0 ? [] : parse(head.slice(gap + 2))
  const fill = 8 - left.length - right.length - tail.length
  if (fill < 0 || (gap < 0 && fill !== 0)) return null
  const groups = [...left, ...Array<number>(fill).fill(0), ...right, ...tail]
  return groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null
}

/**
 * The rate-limit bucket of `ip`: an IPv4 address as is (also when written IPv4-mapped, `::ffff:1.2.3.4`,
 * as a dual-stack socket reports it), an IPv6 address as its /64 (`2001:0db8:0000:0001::/64`), or null when
 * `ip` is not an IP address.
 */
export function addressBucket(ip: string | undefined): string | null {
  if (ip === undefined || ip.length > 64) return null
  const family = isIP(ip)
  if (family === 4) return ip.split('.').map(Number).join('.')
  if (family !== 6) return null
  const g = ipv6Groups(ip)
  if (g === null) return null
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff].join('.')
  }
  return `${g
    .slice(0, 4)
    .map((x) => x.toString(16).padStart(4, '0'))
    .join(':')}::/64`
}

/** The bucket of a request: its client address, else the socket's peer (the proxy), else UNKNOWN_BUCKET. */
export function requestBucket(req: { ip: string; socket?: { remoteAddress?: string } }): string {
  return addressBucket(req.ip) ?? addressBucket(req.socket?.remoteAddress) ?? UNKNOWN_BUCKET
}
