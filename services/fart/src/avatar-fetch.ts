import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { BlockList, isIP } from 'node:net'
import { addressBucket } from './client-address.js'

// One avatar fetch, made safe to do on behalf of whoever asks for a drawing. The URL comes from a profile,
// which its owner writes: the server must not become their way into the network it sits in (SSRF), nor be
// made to hold a body of any size. So: https only; only hosts in AVATAR_HOSTS; no redirect followed (a
// 3xx would lead anywhere); every address the host resolves to checked, and the connection made to the
// checked ones (no second lookup a rebinding DNS could answer differently); the body read as a stream
// and dropped past `maxBytes`; one timeout for all of it. Hosts in AVATAR_INSECURE_HOSTS (tests, a local
// demo CDN) may use plain http and private addresses; nothing else about them is relaxed.

export class AvatarRefused extends Error {
  override name = 'AvatarRefused'
}

export interface AvatarPolicy {
  /** host[:port] avatars may come from (URL `host`: lower case, no default port). */
  hosts: ReadonlySet<string>
  /** Of those, the ones allowed over http and at private or loopback addresses. */
  insecureHosts: ReadonlySet<string>
  maxBytes: number
  timeoutMs: number
}

const TYPES = new Set(['image/jpeg', 'image/png', 'image/gif'])

/**
 * Addresses a server-side fetch must never reach: private, loopback, link-local, multicast, reserved. Two
 * lists: Node's BlockList also checks an IPv4 address against IPv6 rules (as ::ffff:a.b.c.d), so one list
 * with ::ffff:0:0/96 in it would hold every IPv4 address.
 */
const PRIVATE_V4 = new BlockList()
const PRIVATE_V6 = new BlockList()
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 3], // multicast, reserved and broadcast
] as const) {
  PRIVATE_V4.addSubnet(net, bits, 'ipv4')
}
for (const [net, bits] of [
  ['::', 127], // unspecified and loopback
  ['64:ff9b::', 96], // NAT64: an IPv4 address behind a translator
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE_V6.addSubnet(net, bits, 'ipv6')
}

/** True for an address a fetch must not reach (see PRIVATE); IPv4-mapped IPv6 is judged as its IPv4. */
export function isPrivateAddress(text: string): boolean {
  // A zone (fe80::1%eth0) says which interface, not which address.
  const address = text.split('%')[0]!
  const family = isIP(address)
  if (family === 4) return PRIVATE_V4.check(address, 'ipv4')
  if (family !== 6) return true
  // IPv4-mapped, however written (::ffff:7f00:1 too): judged as the IPv4 address it is.
  const bucket = addressBucket(address)
  if (bucket !== null && isIP(bucket) === 4) return PRIVATE_V4.check(bucket, 'ipv4')
  return PRIVATE_V6.check(address, 'ipv6')
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void

/** dns.lookup for the socket, refusing a host any of whose addresses is private. */
function publicLookup(hostname: string, options: object, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, [])
    const bad = addresses.find((a) => isPrivateAddress(a.address))
    if (bad || addresses.length === 0) {
      return callback(new AvatarRefused(`${hostname} resolves to a private address`), [])
    }
    if ((options as { all?: boolean }).all) return callback(null, addresses)
    callback(null, addresses[0]!.address, addresses[0]!.family)
  })
}

/** Why `url` is not fetched at all (before any connection), or null. */
export function refusalOf(url: URL, policy: AvatarPolicy): string | null {
  if (!policy.hosts.has(url.host)) return `${url.host} is not in AVATAR_HOSTS`
  const insecure = policy.insecureHosts.has(url.host)
  if (url.protocol !== 'https:' && !(insecure && url.protocol === 'http:')) {
    return `${url.protocol} is not https`
  }
  if (url.username || url.password) return 'credentials in the URL'
  const literal = url.hostname.replace(/^\[|\]$/g, '')
  if (!insecure && isIP(literal) !== 0 && isPrivateAddress(literal)) {
    return `${literal} is a private address`
  }
  return null
}

/** Reads `res` whole unless it passes `maxBytes` (then the request is destroyed: no more is read). */
function readCapped(res: IncomingMessage, maxBytes: number, abort: (e: Error) => void) {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    res.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) return abort(new AvatarRefused(`body past ${maxBytes} bytes`))
      chunks.push(chunk)
    })
    res.on('end', () => resolve(Buffer.concat(chunks)))
    res.on('error', reject)
    res.on('aborted', () => reject(new AvatarRefused('response aborted')))
  })
}

/** The avatar at `url` as a data: URI; throws AvatarRefused (or a network error) otherwise. */
export async function fetchAvatar(url: URL, policy: AvatarPolicy): Promise<string> {
  const why = refusalOf(url, policy)
  if (why) throw new AvatarRefused(why)
  const insecure = policy.insecureHosts.has(url.host)
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest
  const signal = AbortSignal.timeout(policy.timeoutMs)
  return new Promise<string>((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        signal,
        headers: { accept: 'image/jpeg, image/png, image/gif' },
        ...(insecure ? {} : { lookup: publicLookup as never }),
      },
      (res) => {
        const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
        const declared = Number(res.headers['content-length'] ?? 0)
        const refuse = (reason: string) => {
          req.destroy()
          reject(new AvatarRefused(reason))
        }
        // Not followed: a redirect could point anywhere, the checks above included.
        if (res.statusCode !== 200) return refuse(`answered ${res.statusCode}`)
        if (!TYPES.has(type)) return refuse(`not an image (${type || 'no type'})`)
        if (declared > policy.maxBytes) return refuse(`declared ${declared} bytes`)
        readCapped(res, policy.maxBytes, (e) => {
          req.destroy()
          reject(e)
        }).then((body) => resolve(`data:${type};base64,${body.toString('base64')}`), reject)
      },
    )
    req.on('error', reject)
    req.end()
  })
}
