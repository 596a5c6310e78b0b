import { type ChainableCommander, Cluster, Redis, type RedisOptions } from 'ioredis'
import { keySlot } from './slot.js'

// The one place a service's ioredis client is made: one Redis (REDIS_URL), or a Redis Cluster client
// (REDIS_CLUSTER_NODES) with the same options on every node. The callers keep one code path: ioredis's
// Cluster has the command API of Redis, and routes each command to the node of its key's slot.

/** Where Redis is: what `redisConfig` (@circles/config) reads. */
export interface RedisTarget {
  redisUrl: string
  /** Seeds of a Redis Cluster; null for one Redis. */
  redisClusterNodes: readonly { host: string; port: number }[] | null
}

/** ioredis options from a redis:// or rediss:// URL (its host, port, credentials, database, TLS). */
export function redisOptions(url: string): RedisOptions {
  const u = new URL(url)
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(Number.isInteger(db) && db > 0 ? { db } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  }
}

/**
 * A client of `target` with `options`. For a cluster it is an ioredis `Cluster`, typed as `Redis` so that
 * the modules that take a client stay as they are; the few that reach past the command API (the index
 * writer's own connections, scans, FUNCTION LOAD) ask `isCluster` and go to every primary (`primaries`).
 */
export function connectRedis(target: RedisTarget, options: RedisOptions = {}): Redis {
  if (!target.redisClusterNodes) return new Redis(target.redisUrl, options)
  // A cluster has no databases: only the URL's credentials and TLS apply, to every node.
  const { host: _host, port: _port, db: _db, ...auth } = redisOptions(target.redisUrl)
  const { lazyConnect, enableOfflineQueue, ...node } = options
  const cluster = new Cluster(
    target.redisClusterNodes.map((n) => ({ host: n.host, port: n.port })),
    {
      lazyConnect,
      enableOfflineQueue,
      redisOptions: { ...auth, ...node },
      // not enableAutoPipelining: with it, ioredis 5.11 sends call()/callBuffer() without the command name
      // after a failover the slots move: ask again soon rather than fail the command
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
    },
  )
  return cluster as unknown as Redis
}

/** Whether `redis` is a cluster client (made by `connectRedis` from REDIS_CLUSTER_NODES). */
export function isCluster(redis: Redis | Cluster): redis is Cluster {
  return redis.isCluster
}

/** The connections to every primary of a cluster client; the client itself for one Redis. */
export function primaries(redis: Redis | Cluster): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis]
}

/**
 * `redis.pipeline()`; on a cluster, where ioredis refuses a pipeline whose keys live on several nodes, an
 * object with the same API whose `exec()` sends each command on its own, all at once (in flight together on
 * each node's connection: about one round trip), and answers as a pipeline does. Commands of one slot keep
 * their order (one connection per node); nothing is atomic, as in a pipeline.
 */
export function pipelineFor(redis: Redis): ChainableCommander {
  if (!isCluster(redis)) return redis.pipeline()
  const calls: [string, unknown[]][] = []
  const client = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  const run = ([name, args]: [string, unknown[]]) =>
    (client[name] as (...args: unknown[]) => Promise<unknown>).apply(redis, args).then(
      (reply) => [null, reply] as [null, unknown],
      (err: Error) => [err, null] as [Error, null],
    )
  const spread: ChainableCommander = new Proxy({} as ChainableCommander, {
    get(_, prop) {
      if (prop === 'length') return calls.length
      if (prop === 'exec') return () => Promise.all(calls.map(run))
      // not a thenable: `await pipe` must not call exec
      if (typeof prop !== 'string' || prop === 'then') return undefined
      return (...args: unknown[]) => {
        calls.push([prop, args])
        return spread
      }
    },
  })
  return spread
}

/**
 * `items` in groups whose keys (`keyOf`) all live on one node of a cluster, in their order: a pipeline of
 * one group is one that ioredis's Cluster takes (it refuses one whose keys are on several nodes), sent to
 * that node in one round trip, where `pipelineFor` would send each command on its own. One group for one
 * Redis; none for no items. Grouped by ioredis's own slot map, the one its pipeline checks against.
 */
export function groupByNode<T>(
  redis: Redis,
  items: Iterable<T>,
  keyOf: (item: T) => string,
): T[][] {
  if (!isCluster(redis)) {
    const all = [...items]
    return all.length === 0 ? [] : [all]
  }
  const bySlot = (redis as unknown as Cluster)._groupsBySlot
  const groups = new Map<string, T[]>()
  for (const item of items) {
    const slot = keySlot(keyOf(item))
    const node = bySlot[slot]
    // A slot not mapped yet (the client not connected): its own group, which any pipeline allows.
    const id = node === undefined ? `slot ${slot}` : `node ${node}`
    const list = groups.get(id)
    if (list) list.push(item)
    else groups.set(id, [item])
  }
  return [...groups.values()]
}

/**
 * The keys matching `pattern`, page by page, each page with the connection of the node that holds it: one
 * SCAN walk per primary on a cluster (a SCAN sees one node's keys), the one walk on one Redis. Commands on
 * a page's keys may go in one pipeline on its `node`: they all live there.
 */
export async function* scanPrimaries(
  redis: Redis,
  pattern: string,
  count = 1000,
): AsyncGenerator<{ node: Redis; keys: string[] }> {
  for (const node of primaries(redis)) {
    let cursor = '0'
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count)
      cursor = next
      yield { node, keys }
    } while (cursor !== '0')
  }
}
