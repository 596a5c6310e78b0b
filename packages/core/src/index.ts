export { isPurgeStatus, toAccountEvent, toIdentityEvent } from './account.js'
export { classifyAddress, isPublicAddress } from './address.js'
export { CodecError, decodeEvent, decodeEvents, encodeEvent, encodeEvents } from './codec.js'
export {
  COLUMN_KINDS,
  COLUMN_RECORDS,
  columnsOf,
  decodeColumns,
  EVENT_CREATE,
  EVENT_DELETE,
  EVENT_OTHER,
  type EventColumns,
  eventAt,
} from './columns.js'
export {
  type AccountEvent,
  codePoints,
  DEFAULT_TID_TOLERANCE_MS,
  eventTime,
  type IdentityEvent,
  INTERACTION_KINDS,
  type InteractionCreate,
  type InteractionDelete,
  type InteractionEvent,
  type InteractionKind,
  interpretOp,
  isInteractionCollection,
  LIKE,
  type OpResult,
  POST,
  REPOST,
  type RecordType,
  type RejectReason,
  type RepoOp,
  type StreamEvent,
} from './interaction.js'
export {
  decodeMention,
  encodeMention,
  MAX_MENTION_TEXT,
  type MentionEvent,
  mentionOf,
} from './mention.js'
export {
  BLOCK,
  type BlockEvent,
  interpretPrivacyOp,
  isPrivacyCollection,
  type LabelEvent,
  NO_UNAUTHENTICATED,
  PROFILE,
  type PrivacyEvent,
  type PrivacyResult,
} from './privacy.js'
export { retryDelayMs } from './retry-after.js'
export { eventDid, shardOf } from './shard.js'
export {
  type AtUri,
  isValidDid,
  isValidHandle,
  isValidNsid,
  isValidRkey,
  isValidTid,
  parseAtUri,
  tidFromMicros,
  tidFromMs,
  tidTimestampMs,
} from './syntax.js'
export { DAY_MS, dayOf, HOUR_MS, hourOf } from './time.js'
