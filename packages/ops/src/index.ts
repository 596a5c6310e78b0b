export { type Answers, BUSY_PIPELINE_ENV, everyAnswer } from './chaos-support.js'
export { type DemoAppView, type DemoProfile, startDemoAppView } from './demo-appview.js'
export {
  type Check,
  checkDeadLetters,
  checkFirehose,
  checkIndexers,
  checkRedisServer,
  checkRelay,
  checkSchedulerHeartbeat,
  checkStream,
  DEFAULT_THRESHOLDS,
  type DoctorOptions,
  type DoctorThresholds,
  formatChecks,
  runDoctor,
  type Status,
  subscribeReposUrl,
} from './doctor.js'
export { loadEcosystemApps } from './ecosystem.js'
export { mergeEnv, parseEnvFile, readEnvFile } from './env-file.js'
export { repoRoot } from './paths.js'
export {
  howToGetRedis,
  type PrivateRedis,
  type PrivateRedisOptions,
  privateRedisArgs,
  RedisNotFoundError,
  startPrivateRedis,
} from './private-redis.js'
export {
  type ChooseRedisOptions,
  chooseRedis,
  type RedisChoice,
  RedisUnreachableError,
} from './redis-choice.js'
export {
  type AppSpec,
  createSupervisor,
  prettyLine,
  type Supervisor,
  type SupervisorOptions,
} from './supervisor.js'
