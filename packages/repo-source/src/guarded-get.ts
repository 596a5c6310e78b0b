import type { LookupAddress } from 'node:dns'
import { lookup as dnsLookup } from 'node:dns/promises'
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { classifyAddress, retryDelayMs } from '@circles/core'
import { RateLimitedError, RepoSourceError } from './errors.js'

export type HostLookup = (hostname: string) => Promise<LookupAddress[]>

export interface GuardOptions {
  /** Connect to loopback and private addresses too: only for tests and the local demo. @default false */
  allowPrivate?: boolean
  /** Name resolution; tests point a made-up did:web host at 127.0.0.1. @default node:dns lookup, all addresses */
  lookup?: HostLookup
  /** No response headers, or no body bytes, for this long: `timeout`. @default 10_000 */
  timeoutMs?: number
}

export interface GetOptions extends GuardOptions {
  /** Body bytes past this abort the request: `too_large`. */
  maxBytes: number
  /** The whole exchange, body included: a slow trickle ends too. @default 300_000 */
  maxDurationMs?: number
  headers?: Record<string, string>
}

export interface GuardedResponse {
  status: number
  headers: IncomingHttpHeaders
  /** The body as it arrives, counted against `maxBytes`; read it once. Leaving early frees the socket. */
  body: AsyncIterable<Uint8Array>
}

const defaultLookup: HostLookup = (hostname) => dnsLookup(hostname, { all: true })

/**
 * GET a URL that someone else chose (a DID document, a did:web host): http(s) only, every address the
 * name resolves to must be public unless `allowPrivate`, and the socket connects to the address that was
 * checked, so a second DNS answer cannot swap in 127.0.0.1 between check and connect (DNS rebinding).
 * Redirects are not followed (a 3xx is an `http_status` refusal), as @atproto/identity does.
 */
export async function guardedGet(input: string | URL, opts: GetOptions): Promise<GuardedResponse> {
  const url = parseHttpUrl(input)
  const timeoutMs = opts.timeoutMs ?? 10_000
  const checked = await withTimeout(checkedAddress(url, opts), timeoutMs, url)
  return send(url, checked, opts, timeoutMs)
}

function parseHttpUrl(input: string | URL): URL {
  let url: URL
  try {
    url = new URL(input)
  } catch (cause) {
    throw new RepoSourceError('bad_url', `not a URL: ${String(input)}`, { cause })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RepoSourceError('bad_scheme', `refused ${url.protocol} URL ${url.href}: only http(s)`)
  }
  if (url.username || url.password) {
    throw new RepoSourceError('bad_url', `refused URL with credentials: ${url.host}`)
  }
  return url
}

async function checkedAddress(url: URL, opts: GuardOptions): Promise<LookupAddress> {
  // URL keeps the brackets of an IPv6 literal; the resolver wants the bare address.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  let addresses: LookupAddress[]
  try {
    addresses = await (opts.lookup ?? defaultLookup)(host)
  } catch (cause) {
    throw new RepoSourceError('dns', `cannot resolve ${host}`, { cause })
  }
  const first = addresses[0]
  if (first === undefined) throw new RepoSourceError('dns', `${host} resolves to no address`)
  if (!opts.allowPrivate) {
    // Every answer, not only the one used: a name that also points inside is not a public server.
    for (const { address } of addresses) {
      const range = classifyAddress(address)
      if (range !== 'unicast') {
        throw new RepoSourceError(
          'private_address',
          `refused ${host}: it resolves to ${address} (${range}), not a public address`,
        )
      }
    }
  }
  return first
}

async function withTimeout<T>(work: Promise<T>, ms: number, url: URL): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RepoSourceError('timeout', `no DNS answer for ${url.host} in ${ms} ms`)),
      ms,
    )
  })
  try {
    return await Promise.race([work, expired])
  } finally {
    clearTimeout(timer)
  }
}

function send(
  url: URL,
  checked: LookupAddress,
  opts: GetOptions,
  timeoutMs: number,
): Promise<GuardedResponse> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    let failure: RepoSourceError | undefined
    let res: IncomingMessage | undefined
    const fail = (err: RepoSourceError) => {
      failure ??= err
      stop()
      // Destroying the response (once there is one) errors the body iterator with our reason.
      if (res) res.destroy(failure)
      else req.destroy(failure)
    }
    const idle = setTimeout(
      () => fail(new RepoSourceError('timeout', `${url.host} sent nothing for ${timeoutMs} ms`)),
      timeoutMs,
    )
    const maxDurationMs = opts.maxDurationMs ?? 300_000
    const overall = setTimeout(
      () => fail(new RepoSourceError('timeout', `${url.host} took over ${maxDurationMs} ms`)),
      maxDurationMs,
    )
    const stop = () => {
      clearTimeout(idle)
      clearTimeout(overall)
    }
    const req: ClientRequest = request(url, {
      method: 'GET',
      headers: opts.headers,
      // A socket of its own: a pooled keep-alive socket is keyed by host name, so one opened to an address
      // checked earlier (or under allowPrivate) could carry this request past the check below.
      agent: false,
      // Pins the connection to the address checked above (http(s) calls this instead of DNS).
      lookup: ((_host: string, options: { all?: boolean }, cb: PinnedCallback) => {
        if (options.all) cb(null, [checked])
        else cb(null, checked.address, checked.family)
      }) as never,
    })
    req.on('error', (err) => {
      stop()
      reject(failure ?? new RepoSourceError('network', `GET ${url.href} failed`, { cause: err }))
    })
    req.on('response', (response) => {
      res = response
      idle.refresh()
      // The body iterator reports errors itself; without a listener a timeout that fires while nobody
      // reads would be an unhandled 'error' event.
      response.on('error', () => {})
      const refusal = statusRefusal(url, response, opts.maxBytes)
      if (refusal) {
        fail(refusal)
        reject(refusal)
        return
      }
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        body: countedBody(response, opts.maxBytes, idle, () => failure, fail, stop),
      })
    })
    req.end()
  })
}

type PinnedCallback = (
  err: Error | null,
  address: string | LookupAddress[],
  family?: number,
) => void

function statusRefusal(
  url: URL,
  res: IncomingMessage,
  maxBytes: number,
): RepoSourceError | undefined {
  const status = res.statusCode ?? 0
  if (status === 429) {
    return new RateLimitedError(
      `${url.host} rate-limited GET ${url.pathname}`,
      retryAt(res.headers),
    )
  }
  if (status < 200 || status > 299) {
    return new RepoSourceError('http_status', `GET ${url.href} answered ${status}`, { status })
  }
  const declared = Number(res.headers['content-length'])
  if (Number.isFinite(declared) && declared > maxBytes) {
    return new RepoSourceError(
      'too_large',
      `${url.host} announces ${declared} bytes, limit ${maxBytes}`,
    )
  }
  return undefined
}

async function* countedBody(
  res: IncomingMessage,
  maxBytes: number,
  idle: NodeJS.Timeout,
  failure: () => RepoSourceError | undefined,
  fail: (err: RepoSourceError) => void,
  stop: () => void,
): AsyncGenerator<Uint8Array> {
  let bytes = 0
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      bytes += chunk.length
      if (bytes > maxBytes) {
        fail(new RepoSourceError('too_large', `body passed the limit of ${maxBytes} bytes`))
        break
      }
      idle.refresh()
      yield chunk
    }
  } catch (cause) {
    throw failure() ?? new RepoSourceError('network', 'the body was cut off', { cause })
  } finally {
    stop()
    // A reader that leaves early (or an error) must not leave the socket open.
    if (!res.complete) res.destroy()
  }
  const err = failure()
  if (err) throw err
  // The server may close early without an error event; a short body is a truncated CAR, not an empty one.
  if (!res.complete) throw new RepoSourceError('network', 'the body ended before its end')
}

/** When a 429 says to come back, as epoch ms (core's `retryDelayMs` from now); undefined if it does not say. */
export function retryAt(headers: IncomingHttpHeaders, now = Date.now()): number | undefined {
  const reset = headers['ratelimit-reset']
  const delay = retryDelayMs(
    headers['retry-after'],
    typeof reset === 'string' ? reset : undefined,
    now,
  )
  return delay === undefined ? undefined : now + delay
}
