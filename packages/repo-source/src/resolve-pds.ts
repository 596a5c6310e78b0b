import { isValidDid } from '@circles/core'
import { type AtprotoIdentity, readDidDocument } from './did-document.js'
import { RepoSourceError } from './errors.js'
import { type GuardedResponse, type GuardOptions, guardedGet } from './guarded-get.js'

export interface ResolveOptions extends GuardOptions {
  /** The PLC directory for did:plc. Operator configuration, so trusted: not address-checked. @default 'https://plc.directory' */
  plcUrl?: string
  /** Fetch did:web documents over http: only for tests, whose made-up host has no certificate. @default false */
  didWebHttp?: boolean
  /** A DID document is a few hundred bytes; more is not a document. @default 65_536 */
  maxDocumentBytes?: number
}

const DOC_HEADERS = { accept: 'application/did+ld+json,application/json' }

/**
 * A DID's PDS endpoint and signing key. did:plc through the PLC directory, did:web through
 * `https://<host>/.well-known/did.json` (address-checked like every URL a stranger chose). The returned
 * `pds` is only scheme-checked here; `fetchRepo` checks its address at connect time, where it counts.
 */
export async function resolvePds(did: string, opts: ResolveOptions = {}): Promise<AtprotoIdentity> {
  if (!isValidDid(did)) throw new RepoSourceError('bad_did', `not a valid atproto DID: ${did}`)
  const plc = did.startsWith('did:plc:')
  const url = plc
    ? new URL(`/${did}`, opts.plcUrl ?? 'https://plc.directory')
    : didWebUrl(did, opts.didWebHttp ?? false)
  let res: GuardedResponse
  try {
    res = await guardedGet(url, {
      ...opts,
      allowPrivate: plc ? true : opts.allowPrivate,
      maxBytes: opts.maxDocumentBytes ?? 65_536,
      headers: DOC_HEADERS,
    })
  } catch (err) {
    // 404: never registered; 410: the PLC directory's tombstone for a deactivated DID.
    if (err instanceof RepoSourceError && (err.status === 404 || err.status === 410)) {
      throw new RepoSourceError('did_not_found', `${did} is not known to ${url.host}`, {
        cause: err,
      })
    }
    throw err
  }
  const identity = readDidDocument(did, await readJson(res, did))
  checkScheme(identity.pds, did)
  return identity
}

function didWebUrl(did: string, http: boolean): URL {
  // isValidDid allowed only a hostname with an optional %3A-encoded port, so this is host[:port].
  const host = decodeURIComponent(did.slice('did:web:'.length))
  return new URL(`${http ? 'http' : 'https'}://${host}/.well-known/did.json`)
}

async function readJson(res: GuardedResponse, did: string): Promise<unknown> {
  const chunks: Uint8Array[] = []
  for await (const chunk of res.body) chunks.push(chunk)
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (cause) {
    throw new RepoSourceError('bad_document', `DID document of ${did} is not JSON`, { cause })
  }
}

function checkScheme(endpoint: string, did: string): void {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch (cause) {
    throw new RepoSourceError('bad_url', `PDS of ${did} is not a URL: ${endpoint}`, { cause })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RepoSourceError(
      'bad_scheme',
      `PDS of ${did} is ${url.protocol}, only http(s): ${endpoint}`,
    )
  }
}
