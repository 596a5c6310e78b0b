// pnpm bench:cluster: the indexer bench's 1M-interaction load (indexer-load.ts) through the real indexer
// service into a private 3-primary Redis Cluster and into a private single redis-server, in the same run
// with the same number of indexer processes, in alternating order over several rounds (this 2-core machine
// is noisy). Progress lines first, one JSON line last.
import type { ChildProcess } from 'node:child_process'
import { ensureRedisSettings } from '@circles/interaction-index'
import { createSchema } from '@circles/redis-schema'
import { connectRedis } from '@circles/redis-wire'
import { startRedisCluster, startRedisServer } from '@circles/testkit'
import { Redis } from 'ioredis'
import {
  childrenCpu,
  type Generated,
  generate,
  loadStream,
  N,
  PREFIX,
  progressFor,
  redisCpu,
  spawnIndexers,
  stopChild,
  usedMemory,
  waitDrained,
} from './indexer-load.js'

/**
 * Indexer processes on both sides: two, one per core of this machine. The same count on both, so that the
 * ratio is the cost of the cluster (frames split per primary, three event loops instead of one), not of
 * more writers.
 */
const WRITERS = Number(process.env.BENCH_INDEXERS ?? 2)
/** Rounds of (single, cluster), the order swapped every round. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2)
/**
 * Primaries of the cluster. No replicas: a replica applies every write again, on the same two cores, and
 * holds a second copy; the single node has none to compare with. What a replica costs is its primary's
 * write CPU again and the same memory again, on a machine of its own in production.
 */
const PRIMARIES = Number(process.env.BENCH_PRIMARIES ?? 3)

const progress = progressFor('bench-cluster')

type Kind = 'single' | 'cluster'

interface Result {
  kind: Kind
  perSecond: number
  bytes: number
  redisUs: number
  nodeUs: number
  /** used_memory growth per server, MB: how evenly the slots spread the index. */
  perServerMb: number[]
  /** Redis CPU per interaction per server, us: the stream's primary ({fh}) also serves every read and ack. */
  perServerUs: number[]
}

interface Target {
  /** The client the bench loads and watches the stream with (a Cluster client on the cluster). */
  client: Redis
  /** One plain connection per server (per primary on the cluster): memory and CPU are summed over them. */
  servers: Redis[]
  env: Record<string, string>
  stop(): Promise<void>
}

async function startTarget(kind: Kind): Promise<Target> {
  if (kind === 'single') {
    const server = await startRedisServer()
    const client = new Redis(server.url, { maxRetriesPerRequest: null })
    return {
      client,
      servers: [client],
      env: { REDIS_URL: server.url },
      async stop() {
        client.disconnect()
        await server.stop()
      },
    }
  }
  const cluster = await startRedisCluster({ primaries: PRIMARIES, replicas: 0 })
  const client = connectRedis(cluster.target, { maxRetriesPerRequest: null })
  const servers = (await cluster.primaries()).map((n) => new Redis(n.port, '127.0.0.1'))
  return {
    client,
    servers,
    env: { REDIS_CLUSTER_NODES: cluster.seeds },
    async stop() {
      client.disconnect()
      for (const s of servers) s.disconnect()
      await cluster.stop()
    },
  }
}

async function runOnce(kind: Kind, gen: Generated): Promise<Result> {
  const target = await startTarget(kind)
  const { client, servers } = target
  const schema = createSchema(PREFIX)
  const children: ChildProcess[] = []
  try {
    const settings = await ensureRedisSettings(client)
    if (Object.keys(settings.unmet).length > 0)
      throw new Error(`settings unmet: ${JSON.stringify(settings.unmet)}`)
    const before = await Promise.all(servers.map((s) => usedMemory([s])))
    const stats0 = await memoryStats(servers)
    const load0 = await redisCpu(servers)
    const entries = await loadStream(client, schema.eventStream, gen.events)
    // what the firehose's XADDs cost the stream's primary: the one cost that no number of primaries divides
    const xaddUs = (((await redisCpu(servers)) - load0) * 1e6) / gen.creates
    const streamHome = await homeOf(servers, schema.eventStream)
    const t0 = Date.now()
    children.push(...spawnIndexers(WRITERS, target.env))
    const cpu0 = await Promise.all(servers.map((s) => redisCpu([s])))
    await waitDrained(client, schema.eventStream, schema.indexerGroup, entries, t0, progress)
    const seconds = (Date.now() - t0) / 1000
    const cpu1 = await Promise.all(servers.map((s) => redisCpu([s])))
    const perServerUs = cpu1.map((c, i) => ((c - (cpu0[i] as number)) * 1e6) / gen.creates)
    const redisUs = perServerUs.reduce((a, b) => a + b, 0)
    const nodeUs = (childrenCpu(children) * 1e6) / gen.creates
    await Promise.all(children.map(stopChild))
    // two slots on a cluster: one DEL each
    await client.del(schema.eventStream)
    await client.del(schema.indexerMetrics)
    const after = await Promise.all(servers.map((s) => usedMemory([s])))
    const grown = after.map((m, i) => m - (before[i] as number))
    const live = gen.creates - gen.deleted
    const bytes = grown.reduce((a, b) => a + b, 0) / live
    const stats1 = await memoryStats(servers)
    // where a difference in bytes comes from: the data itself, or Redis's own structures (key tables...)
    const split = Object.entries(stats1)
      .map(([name, v]) => `${name} ${((v - (stats0[name] ?? 0)) / live).toFixed(1)}`)
      .join(', ')
    // a cluster node keeps each key in its slot's list too (Redis 7.0: two pointers a key), so keys matter
    const keys = (await Promise.all(servers.map((s) => s.dbsize()))).reduce((a, b) => a + b, 0)
    const result: Result = {
      kind,
      perSecond: gen.creates / seconds,
      bytes,
      redisUs,
      nodeUs,
      perServerMb: grown.map((g) => Math.round(g / 1e5) / 10),
      perServerUs,
    }
    progress(
      `${kind}: ${gen.creates} interactions in ${seconds.toFixed(1)} s by ${WRITERS} indexers: ` +
        `${result.perSecond.toFixed(0)}/s; CPU per interaction: redis ${redisUs.toFixed(1)} us ` +
        `(summed over ${servers.length}), indexers ${nodeUs.toFixed(1)} us; ${bytes.toFixed(1)} B each, ${keys} keys ` +
        `(per server: MB ${result.perServerMb.join(', ')}; us ${perServerUs.map((u) => u.toFixed(1)).join(', ')}; ` +
        `the stream's: ${streamHome}, its XADDs ${xaddUs.toFixed(2)} us); B each by MEMORY STATS: ${split}`,
    )
    return result
  } finally {
    await Promise.all(children.map((c) => stopChild(c).catch(() => {})))
    await target.stop()
  }
}

/** MEMORY STATS fields summed over the servers: the dataset and the overheads that grow with keys. */
async function memoryStats(servers: Redis[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const server of servers) {
    const flat = (await server.call('MEMORY', 'STATS')) as unknown[]
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const name = String(flat[i])
      if (['dataset.bytes', 'overhead.total', 'allocator.allocated'].includes(name))
        out[name] = (out[name] ?? 0) + Number(flat[i + 1])
      // db.0: overhead.hashtable.main and .expires
      if (name === 'db.0') {
        const db = flat[i + 1] as unknown[]
        out['hashtable.main'] = (out['hashtable.main'] ?? 0) + Number(db[1])
      }
    }
  }
  return out
}

/** Which of the servers holds `key` (1-based, as the per-server figures are printed). */
async function homeOf(servers: Redis[], key: string): Promise<number> {
  for (let i = 0; i < servers.length; i++) {
    // a node that does not serve the key's slot answers MOVED
    const found = await (servers[i] as Redis).call('EXISTS', key).catch(() => 0)
    if (found === 1) return i + 1
  }
  return 0
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length
}

async function main(): Promise<void> {
  progress(
    `generating ${N} interactions; ${ROUNDS} rounds, ${WRITERS} indexers, ${PRIMARIES} primaries`,
  )
  const gen = generate(Date.now())
  const results: Result[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const order: Kind[] = round % 2 === 0 ? ['single', 'cluster'] : ['cluster', 'single']
    for (const kind of order) results.push(await runOnce(kind, gen))
  }
  const of = (kind: Kind) => results.filter((r) => r.kind === kind)
  const single = mean(of('single').map((r) => r.perSecond))
  const cluster = mean(of('cluster').map((r) => r.perSecond))
  const bytes = mean(of('cluster').map((r) => r.bytes))
  const singleBytes = mean(of('single').map((r) => r.bytes))
  progress(
    `single: ${of('single')
      .map((r) => r.perSecond.toFixed(0))
      .join(', ')}/s; cluster: ${of('cluster')
      .map((r) => r.perSecond.toFixed(0))
      .join(', ')}/s; bytes each: single ${singleBytes.toFixed(1)}, cluster ${bytes.toFixed(1)}; ` +
      `Redis CPU per interaction: single ${mean(of('single').map((r) => r.redisUs)).toFixed(1)} us, ` +
      `cluster ${mean(of('cluster').map((r) => r.redisUs)).toFixed(1)} us (all primaries)`,
  )
  // CPU per interaction (Redis + indexers) moves much less with the machine's other load than wall time
  const cpu = (kind: Kind) => mean(of(kind).map((r) => r.redisUs + r.nodeUs))
  progress(
    `CPU per interaction, Redis + indexers: single ${cpu('single').toFixed(1)} us, cluster ` +
      `${cpu('cluster').toFixed(1)} us: the cluster does ${(cpu('single') / cpu('cluster')).toFixed(2)} of the ` +
      `single node's interactions per CPU second`,
  )
  const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d
  process.stdout.write(
    `${JSON.stringify({
      bench: 'cluster',
      single_per_s: Math.round(single),
      cluster_per_s: Math.round(cluster),
      ratio: round(cluster / single, 2),
      bytes_per_interaction: round(bytes),
    })}\n`,
  )
}

await main()
