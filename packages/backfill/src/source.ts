import { cborToLexRecord, readCarWithRoot, verifyRepo } from '@atproto/repo'
import { fetchRepo, type GuardOptions, RepoSourceError, resolvePds } from '@circles/repo-source'
import type { RepoRecord } from './classify.js'

// DID -> verified records: the PDS from the DID document, the repo from getRepo, checked against the
// document's signing key before a single record is handed out (a repo that does not check is refused
// whole, never half-applied).

export interface SourceConfig extends GuardOptions {
  /** The PLC directory for did:plc (operator configuration). @default 'https://plc.directory' */
  plcUrl?: string
  /** CAR bytes past this are refused (`too_large`). @default 268_435_456 */
  maxBytes?: number
  /** did:web documents over http (tests only). */
  didWebHttp?: boolean
}

export interface OpenedRepo {
  rev: string
  bytes: number
  records: Iterable<RepoRecord>
}

export type RepoOpener = (did: string, opts?: { since?: string }) => Promise<OpenedRepo>

const WANTED = new Set(['app.bsky.feed.like', 'app.bsky.feed.repost', 'app.bsky.feed.post'])

async function collect(car: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  let n = 0
  for await (const p of car) {
    parts.push(p)
    n += p.length
  }
  return Buffer.concat(parts, n)
}

/** Resolves, fetches and verifies repos with `cfg`. */
export function repoOpener(cfg: SourceConfig = {}): RepoOpener {
  return async (did, opts = {}) => {
    const identity = await resolvePds(did, cfg)
    if (identity.signingKey === undefined) {
      throw new RepoSourceError(
        'bad_document',
        `${did}: the DID document names no atproto signing key`,
      )
    }
    const { car } = await fetchRepo(identity.pds, did, { ...cfg, since: opts.since })
    const bytes = await collect(car)
    let checked: Awaited<ReturnType<typeof verifyRepo>>
    let blocks: Awaited<ReturnType<typeof readCarWithRoot>>['blocks']
    try {
      const car = await readCarWithRoot(bytes)
      blocks = car.blocks
      checked = await verifyRepo(blocks, car.root, did, identity.signingKey)
    } catch (cause) {
      throw new RepoSourceError('bad_document', `${did}: the repo does not verify`, { cause })
    }
    const records = checked.creates
      .filter((c) => WANTED.has(c.collection))
      .map((c) => ({
        collection: c.collection,
        rkey: c.rkey,
        record: cborToLexRecord(blocks.get(c.cid) as Uint8Array),
      }))
    return { rev: checked.commit.rev, bytes: bytes.length, records }
  }
}
