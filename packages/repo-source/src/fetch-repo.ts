import type { IncomingHttpHeaders } from 'node:http'
import { isValidDid, isValidTid } from '@circles/core'
import { RepoSourceError } from './errors.js'
import { type GuardOptions, guardedGet } from './guarded-get.js'

export interface FetchRepoOptions extends GuardOptions {
  /** Only what changed after this repo revision (`getRepo?since=`), for a re-sync. */
  since?: string
  /** CAR bytes past this abort the download: `too_large`. @default 268_435_456 (256 MiB) */
  maxBytes?: number
  /** The whole download; an idle connection ends sooner through `timeoutMs`. @default 300_000 */
  maxDurationMs?: number
}

export interface RepoStream {
  /** The CAR as it arrives; read once. Errors while reading are `RepoSourceError`s (timeout, too_large). */
  car: AsyncIterable<Uint8Array>
  headers: IncomingHttpHeaders
}

/**
 * Starts `com.atproto.sync.getRepo` and hands back the CAR as a stream, not a buffer: a large repo is
 * read and folded as it arrives, never held whole. A 429 is a `RateLimitedError` with `retryAt`; the
 * caller's queue waits, nothing here retries.
 */
export async function fetchRepo(
  pds: string,
  did: string,
  opts: FetchRepoOptions = {},
): Promise<RepoStream> {
  if (!isValidDid(did)) throw new RepoSourceError('bad_did', `not a valid atproto DID: ${did}`)
  let url: URL
  try {
    url = new URL('/xrpc/com.atproto.sync.getRepo', pds)
  } catch (cause) {
    throw new RepoSourceError('bad_url', `not a PDS URL: ${pds}`, { cause })
  }
  url.searchParams.set('did', did)
  if (opts.since !== undefined) url.searchParams.set('since', opts.since)
  const res = await guardedGet(url, {
    ...opts,
    maxBytes: opts.maxBytes ?? 268_435_456,
    headers: { accept: 'application/vnd.ipld.car' },
  })
  return { car: res.body, headers: res.headers }
}

/**
 * The rev of the repo's current commit (`com.atproto.sync.getLatestCommit`), to skip a re-sync that would
 * find nothing: a PDS answers `getRepo?since=<its current rev>` with a CAR whose root commit it leaves
 * out (nothing is newer than it), which a verifying reader must refuse. A claim, not verified: it only
 * decides whether to fetch; what is fetched is verified.
 */
export async function fetchLatestRev(
  pds: string,
  did: string,
  opts: GuardOptions = {},
): Promise<string> {
  const url = new URL('/xrpc/com.atproto.sync.getLatestCommit', pds)
  url.searchParams.set('did', did)
  const res = await guardedGet(url, {
    ...opts,
    maxBytes: 4096,
    headers: { accept: 'application/json' },
  })
  const chunks: Uint8Array[] = []
  for await (const chunk of res.body) chunks.push(chunk)
  let rev: unknown
  try {
    rev = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { rev?: unknown }).rev
  } catch (cause) {
    throw new RepoSourceError('bad_commit', `getLatestCommit of ${did} is not JSON`, { cause })
  }
  if (typeof rev !== 'string' || !isValidTid(rev)) {
    throw new RepoSourceError('bad_commit', `getLatestCommit of ${did} names no rev`)
  }
  return rev
}
