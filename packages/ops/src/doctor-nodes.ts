import { primaries } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { type Check, checkRedisServer, type Status } from './doctor.js'

// The doctor on a Redis Cluster (REDIS_CLUSTER_NODES): INFO and CONFIG answer for the one node they reach,
// which on a cluster client is any node. The server checks run on every primary and the memory line sums
// them (redis-wire `serverMemory`); on one Redis both are what they were.

const RANK: Record<Status, number> = { ok: 0, warn: 1, fail: 2 }

/** The address a node's connection names, for a line that differs between nodes. */
function addressOf(node: Redis): string {
  return `${node.options.host ?? '?'}:${node.options.port ?? '?'}`
}

/**
 * `checkRedisServer` on every primary: one line per check when every primary answers the same, else the
 * worst answer, naming the primaries that gave it.
 */
export async function checkRedisServers(redis: Redis): Promise<Check[]> {
  const nodes = primaries(redis)
  if (nodes.length === 1) return checkRedisServer(nodes[0] as Redis)
  const perNode = await Promise.all(nodes.map((n) => checkRedisServer(n)))
  const first = perNode[0] ?? []
  return first.map((check) => {
    const all = perNode.map((checks) => checks.find((c) => c.name === check.name) ?? check)
    if (all.every((c) => c.status === check.status && c.message === check.message)) {
      return { ...check, message: `${check.message} (every primary: ${nodes.length})` }
    }
    const worst = all.reduce((a, b) => (RANK[b.status] > RANK[a.status] ? b : a))
    const where = nodes.filter((_, i) => all[i]?.message === worst.message).map(addressOf)
    return { ...worst, message: `${where.join(', ')}: ${worst.message}` }
  })
}
