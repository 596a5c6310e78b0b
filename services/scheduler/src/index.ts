export { readEnv, type SchedulerConfig, type SchedulerEnv, toConfig } from './config.js'
export { createLiveHours } from './live-index.js'
export type { HourRow, LiveHours } from './live-source.js'
export { readRollupCursor } from './rollup.js'
export {
  createSchedulerQueues,
  createSchedulerService,
  type SchedulerDeps,
  type SchedulerService,
} from './service.js'
export { readSnapshots, type Snapshot } from './snapshots.js'
export { type GlobalStats, readGlobalStats } from './stats.js'
