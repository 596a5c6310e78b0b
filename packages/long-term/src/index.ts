// The long-term daily aggregates: one format for the day blobs (day-blob.ts) that the scheduler's roll-up
// and repo backfills write and the forget step removes from, their reader (read.ts), and the long windows
// (7, 30, 90 days) that add them to the live index (long-window.ts). The roll-up itself, and the fencing
// of its writes, stay in the scheduler.
export {
  dayBlobMark,
  emptyKindCounts,
  encodeDayBlob,
  encodeDayBlobRows,
  encodePlainDayBlob,
  forEachPackedRecord,
  forEachRecordAt,
  isCompactDayBlob,
  kindIndex,
  kindOfIndex,
  LongTermCodecError,
  type LongTermSide,
  markOfHour,
  mergeDayBlob,
  type PackedRecord,
  packDid,
  plainDayBlob,
  type RecordColumns,
  recordSize,
  SIDE_DIRECTION,
} from './day-blob.js'
export {
  createLongWindowReader,
  type LongSummary,
  type LongWindowReader,
  MAX_LONG_WINDOW_DAYS,
} from './long-window.js'
export { type PartnerCounts, readLongTerm, resolvePartners, sumDayBlobs } from './read.js'
