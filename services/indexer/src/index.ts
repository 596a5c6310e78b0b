export { type IndexerConfig, readEnv, toConfig } from './config.js'
export { decodeEntries, type RawEntry } from './entries.js'
export type { IndexerCounters } from './metrics.js'
export { createIndexerService, type IndexerDeps, type IndexerService } from './service.js'
