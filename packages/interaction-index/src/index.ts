// The live 48-hour interaction index: the write path (used by the indexer service, and by tests and
// benches to seed an index without a stream) and the read path (used by the API and the scheduler).
export { accountLogKeys, MAX_ROLLUP_GRACE_HOURS } from './account-keys.js'
export { DidCache } from './did-cache.js'
export { didTableEntries, rememberDids, resolveIds } from './did-table.js'
// Who the scheduler's outputs and the API's stats leave out (opted out, purged, queued to be forgotten).
export {
  type CommandSink,
  hiddenAccounts,
  hiddenChecks,
  hiddenFromReplies,
} from './hidden.js'
export {
  CODE_KINDS,
  DEFAULT_ROLLUP_GRACE_HOURS,
  DID_TABLE_BUCKETS,
  didId,
  didTableBucket,
  HEADER_SIZE,
  HOUR_AUTHOR_SHARDS,
  keepSeconds,
  RECORD_SIZE,
  unpackDidText,
  WINDOW_HOURS,
} from './layout.js'
export { LiveSinceMark, readLiveSince } from './live-since.js'
export {
  changeOptOuts,
  clearPurgeMarks,
  FOREVER_MS,
  type OptOutChange,
  type OptOutOutcome,
  optOutChanges,
} from './opt-outs.js'
export { IndexQueryError } from './read/context.js'
export type { HourIdBatch, HourRow, HourView } from './read/hour-view.js'
export { createIndexReader, type IndexReader } from './read/index-reader.js'
export type { InteractionInfo } from './read/interaction.js'
export type { AddCount, ExtraCounts } from './read/merged.js'
export {
  DEFAULT_WEIGHTS,
  type Direction,
  type KindCounts,
  type Partner,
  type PartnerReader,
  type PartnersQuery,
  type TopPartnersQuery,
  type Weights,
  type WindowSummary,
} from './read/partners.js'
export { INDEX_APPLY_FUNCTION, INDEX_LIBRARY } from './scripts.js'
export { ensureRedisSettings, REQUIRED_REDIS_SETTINGS, type SettingsReport } from './settings.js'
export {
  createIndexWriter,
  type IndexWriter,
  type IndexWriterOptions,
} from './write/index-writer.js'
export { type ApplyStats, emptyStats } from './write/stats.js'
