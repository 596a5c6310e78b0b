export { type AtprotoIdentity, readDidDocument } from './did-document.js'
export { RateLimitedError, RepoSourceError, type RepoSourceReason } from './errors.js'
export { type FetchRepoOptions, fetchLatestRev, fetchRepo, type RepoStream } from './fetch-repo.js'
export {
  type GetOptions,
  type GuardedResponse,
  type GuardOptions,
  guardedGet,
  type HostLookup,
  retryAt,
} from './guarded-get.js'
export {
  fieldsOf,
  type InteractionFields,
  type InteractionRecord,
} from './interaction-fields.js'
export {
  type LimiterClock,
  type ObserveHeaders,
  PdsLimiter,
  type PdsLimiterOptions,
} from './pds-limiter.js'
export {
  INTERACTION_COLLECTIONS,
  type ReadRepoOptions,
  type RepoContents,
  type RepoRecord,
  readRepo,
  readRepoDiff,
} from './read-repo.js'
export { type ResolveOptions, resolvePds } from './resolve-pds.js'
