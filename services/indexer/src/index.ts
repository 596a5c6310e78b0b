export type { BackoffState } from './backoff.js'
export { type IndexerConfig, type IndexerEnv, readEnv, toConfig } from './config.js'
export { decodeEntries, type PoisonEntry, type RawEntry } from './entries.js'
export {
  classifyRedisError,
  type RedisErrorAction,
  type RedisErrorClass,
  type RedisErrorKind,
} from './errors.js'
export type { IndexerCounters } from './metrics.js'
export { createIndexerService, type IndexerDeps, type IndexerService } from './service.js'
