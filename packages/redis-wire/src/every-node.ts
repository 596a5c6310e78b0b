import { type Cluster, Redis } from 'ioredis'
import { isCluster } from './client.js'

/**
 * Runs `fn` on a connection to every node: the client itself for one Redis; on a cluster each primary AND
 * each replica, from CLUSTER NODES (ioredis's `nodes('all')` lists only the primaries unless it reads from
 * replicas). For per-server settings (CONFIG SET), which a replica must hold before a failover makes it a
 * primary. Nodes flagged failed or without an address are left out; one that cannot be reached rejects.
 */
export async function onEveryNode<T>(
  redis: Redis | Cluster,
  fn: (node: Redis, address: string) => Promise<T>,
): Promise<T[]> {
  if (!isCluster(redis)) {
    const { host, port } = redis.options
    return [await fn(redis, `${host}:${port}`)]
  }
  const text = String(await redis.call('CLUSTER', 'NODES'))
  const results: T[] = []
  for (const line of text.split('\n')) {
    const [, addr, flags] = line.split(' ')
    if (!addr || !flags || /fail|noaddr|handshake/.test(flags)) continue
    // ip:port@cport[,hostname]; the ip is empty only on a node not yet joined (then it is alone, on loopback)
    const at = addr.split('@')[0] as string
    const colon = at.lastIndexOf(':')
    const host = at.slice(0, colon) || '127.0.0.1'
    const port = Number(at.slice(colon + 1))
    const node = new Redis({
      ...redis.options.redisOptions,
      host,
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    })
    node.on('error', () => {})
    try {
      await node.connect()
      results.push(await fn(node, `${host}:${port}`))
    } finally {
      node.disconnect()
    }
  }
  return results
}
