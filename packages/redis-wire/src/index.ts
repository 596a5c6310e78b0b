// A minimal RESP client for hot write paths: commands encoded in place into one buffer (`Frame`), sent on a
// connection of their own (`Wire`) with one promise for all their replies, and Redis Cluster's key slot
// (`keySlot`), by which callers group commands (and, later, route them to a cluster node). Also the one
// loader of the repo's Lua scripts (`luaSource`), whose errors name their file and line (`withLuaSource`).
export {
  connectRedis,
  groupByNode,
  isCluster,
  pipelineFor,
  primaries,
  type RedisTarget,
  redisOptions,
  scanPrimaries,
} from './client.js'
export { ClusterWire, commandsOf, type FrameSender, wireFor } from './cluster-wire.js'
export { onEveryNode } from './every-node.js'
export { encodeBulks, Frame } from './frame.js'
export { luaErrorSource, luaSource, nameLuaFunction, withLuaSource } from './lua.js'
export { parseInfo, type ServerMemory, serverMemory } from './server-info.js'
export { keySlot, keySlotOf } from './slot.js'
export { DEFAULT_REPLY_TIMEOUT_MS, Wire, WireError, type WireOptions } from './wire.js'
