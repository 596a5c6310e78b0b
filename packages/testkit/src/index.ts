// The light entry: what tests and benchmarks need without a PDS. Importing it costs no @atproto/pds start-up
// (seconds per test file); the local PDS and what drives it are `@circles/testkit/pds`.

export { freePort } from '@circles/redis-server'
export { clockAnchor } from './clock.js'
export {
  CORPUS_MAGIC,
  CorpusError,
  type CorpusFrame,
  CorpusWriter,
  decodeCorpus,
  encodeCorpus,
  frameSeq,
  frameType,
  iterateCorpus,
  readCorpus,
} from './corpus.js'
export { didOf } from './dids.js'
export {
  emptyTally,
  InteractionLedger,
  type KindTally,
  LEDGER_KINDS,
  type LedgerKind,
  type PartnerTally,
  weightedScore,
} from './ledger.js'
export { CROSS_SLOT_ERROR, captureLogLines } from './log-capture.js'
export {
  type DocumentedMetric,
  documentedMetrics,
  metricOf,
  namesOf,
  Page,
  type Service,
  scrape,
  seriesIn,
} from './metrics-table.js'
export {
  CHROMIUM_ARGS,
  CHROMIUM_PATH,
  haveChromium,
  havePostgres,
  havePromtool,
  MissingPartError,
  needPart,
  type Part,
  reachable,
} from './parts.js'
export { type PollOptions, pollUntil, pollUntilEqual } from './poll.js'
export { prng } from './prng.js'
export { processCpuSeconds } from './proc.js'
export {
  createTestRedis,
  deleteByPrefix,
  loseByPrefix,
  TEST_REDIS_URL,
  type TestRedis,
} from './redis.js'
export {
  type ClusterNode,
  haveRedisCli,
  type PrivateRedisCluster,
  type RedisClusterOptions,
  startRedisCluster,
} from './redis-cluster.js'
export { dumpByPrefix } from './redis-dump.js'
export {
  type PrivateRedis,
  type RollbackRedis,
  startRedisServer,
  startRollbackRedis,
} from './redis-server.js'
export { type ReferenceResult, referenceEvents } from './reference.js'
export {
  errorFrame,
  type ReplayServer,
  type ReplayServerOptions,
  SUBSCRIBE_REPOS_PATH,
  startReplayServer,
} from './replay-server.js'
export { settle } from './settle.js'
export { type StallProxy, type StallProxyOptions, startStallProxy } from './stall-proxy.js'
export { SvgError, svgTitles } from './svg.js'
export {
  ensureLargeCorpus,
  type SynthOptions,
  type SynthStats,
  synthesizeFrames,
} from './synth-corpus.js'
export { makeTestRepo, type TestRecord, type TestRepo } from './test-repo.js'
