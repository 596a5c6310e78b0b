import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP } from 'node:net'
import { isPublicAddress } from '@circles/core'

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
 * True for an address a fetch must not reach: anything but plain public unicast (core's
 * `isPublicAddress`, an allow-list shared with the backfill's repo fetches; IPv4-mapped IPv6 is judged as
 * its IPv4, a zone is ignored).
 */
export function isPrivateAddress(text: string): boolean {
  return !isPublicAddress(text)
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
