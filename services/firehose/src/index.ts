export { type FirehoseConfig, type FirehoseEnv, readEnv, toConfig } from './config.js'
export { decodeFrame, findBlocks } from './fast-decoder.js'
export type { FrameKind, FrameResult, RelayErrorFrame, SkipReason } from './frame-result.js'
export { type Batch, PublishError, publishBatch, readCursor } from './publisher.js'
export {
  backoffDelay,
  createFirehoseService,
  type FirehoseDeps,
  FirehoseError,
  type FirehoseService,
} from './service.js'
export { ensureGroup, type LagReading, readLag, trimRead } from './stream-lag.js'
