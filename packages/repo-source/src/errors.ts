/** Why a DID, a DID document or a repo was refused; stable codes for metrics ("failures by reason"). */
export type RepoSourceReason =
  | 'bad_did'
  | 'did_not_found'
  | 'bad_document'
  | 'no_pds'
  | 'bad_scheme'
  | 'bad_url'
  | 'private_address'
  | 'dns'
  | 'network'
  | 'timeout'
  | 'too_large'
  | 'http_status'
  | 'rate_limited'
  // The repo itself (readRepo): refused whole, before any record is handed out.
  | 'bad_car'
  | 'bad_block'
  | 'missing_block'
  | 'bad_commit'
  | 'wrong_did'
  | 'bad_signature'
  | 'bad_mst'

export class RepoSourceError extends Error {
  override name = 'RepoSourceError'
  readonly reason: RepoSourceReason
  /** The HTTP status when the refusal came from a response. */
  readonly status: number | undefined

  constructor(
    reason: RepoSourceReason,
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.reason = reason
    this.status = options?.status
  }
}

/** A 429: the caller queues the job again at `retryAt` (no retry loop in here, the queue owns retries). */
export class RateLimitedError extends RepoSourceError {
  override name = 'RateLimitedError'
  /** Epoch ms from `retry-after` or `ratelimit-reset`; undefined when the server named no time. */
  readonly retryAt: number | undefined

  constructor(message: string, retryAt: number | undefined) {
    super('rate_limited', message, { status: 429 })
    this.retryAt = retryAt
  }
}
