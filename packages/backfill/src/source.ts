import {
  fetchLatestRev,
  fetchRepo,
  type GuardOptions,
  type InteractionRecord,
  PdsLimiter,
  RepoSourceError,
  readRepo,
  readRepoDiff,
  resolvePds,
} from '@circles/repo-source'
import type { RepoRecord } from './classify.js'

// DID -> verified records: the PDS from the DID document, the repo from getRepo, read as it streams and
// checked against the document's signing key before a single record is handed out (a repo that does not
// check is refused whole, never half-applied). One limiter per opener: every fetch of the process to one
// PDS host shares its slots and its rate-limit pauses.

export interface SourceConfig extends GuardOptions {
  /** The PLC directory for did:plc (operator configuration). @default 'https://plc.directory' */
  plcUrl?: string
  /** CAR bytes past this are refused (`too_large`). @default 268_435_456 */
  maxBytes?: number
  /** did:web documents over http (tests only). */
  didWebHttp?: boolean
  /** Requests at once to one PDS host. @default 2 */
  perPds?: number
}

export interface OpenedRepo {
  rev: string
  bytes: number
  records: Iterable<RepoRecord | InteractionRecord>
}

export type RepoOpener = (did: string, opts?: { since?: string }) => Promise<OpenedRepo>

/** Resolves, fetches and verifies repos with `cfg`. */
export function repoOpener(cfg: SourceConfig = {}): RepoOpener {
  const limiter = new PdsLimiter({ perHost: cfg.perPds ?? 2 })
  return async (did, opts = {}) => {
    const identity = await resolvePds(did, cfg)
    const signingKey = identity.signingKey
    if (signingKey === undefined) {
      throw new RepoSourceError(
        'bad_document',
        `${did}: the DID document names no atproto signing key`,
      )
    }
    // The slot is held through the download and the read: the CAR streams from the socket as it is read.
    return limiter.run(identity.pds, async (observe) => {
      if (
        opts.since !== undefined &&
        (await fetchLatestRev(identity.pds, did, cfg)) === opts.since
      ) {
        return { rev: opts.since, bytes: 0, records: [] } // nothing new since the last backfill
      }
      const { car, headers } = await fetchRepo(identity.pds, did, { ...cfg, since: opts.since })
      observe(headers)
      const read = opts.since === undefined ? readRepo : readRepoDiff
      const repo = await read(car, { did, signingKey, maxBytes: cfg.maxBytes })
      return { rev: repo.rev, bytes: repo.bytes, records: repo.interactions() }
    })
  }
}
