export { freePort } from './free-port.js'
export { findOnPath, pingReply, redisAnswers } from './probe.js'
export {
  type RedisServer,
  type RedisServerOptions,
  RedisStartError,
  startRedisProcess,
} from './server.js'
