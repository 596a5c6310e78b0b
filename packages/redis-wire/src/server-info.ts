import type { Cluster, Redis } from 'ioredis'
import { primaries } from './client.js'

// What the servers behind a client hold, for the doctor and the scheduler's gauges. INFO answers for the one
// node it reaches, which on a cluster client is any node: these read every primary.

/** An INFO reply as field -> value (section headers and blank lines left out). */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':')
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1)
  }
  return out
}

/** Memory of the server(s) behind a client, summed over a cluster's primaries. */
export interface ServerMemory {
  used: number
  /** 0 when some primary has no limit (it may then take all its machine's memory). */
  maxmemory: number
  /** The machines' memory: each host once (several nodes of one machine share it). */
  system: number
  /** Primaries read (1 for one Redis). */
  nodes: number
}

export async function serverMemory(redis: Redis | Cluster): Promise<ServerMemory> {
  const nodes = primaries(redis)
  const infos = await Promise.all(nodes.map(async (n) => parseInfo(await n.info('memory'))))
  const hosts = new Map<string, number>()
  let used = 0
  let maxmemory = 0
  let unbounded = false
  infos.forEach((info, i) => {
    used += Number(info.used_memory ?? 0)
    const max = Number(info.maxmemory ?? 0)
    if (max > 0) maxmemory += max
    else unbounded = true
    const host = String((nodes[i] as Redis).options.host ?? '?')
    hosts.set(host, Math.max(hosts.get(host) ?? 0, Number(info.total_system_memory ?? 0)))
  })
  const system = [...hosts.values()].reduce((a, b) => a + b, 0)
  return { used, maxmemory: unbounded ? 0 : maxmemory, system, nodes: nodes.length }
}
