import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { findOnPath, type RedisServer, startRedisProcess } from '@circles/redis-server'
import { Redis } from 'ioredis'
import { needPart } from './parts.js'

// A real Redis Cluster for the cluster tests and `pnpm bench:cluster`: `primaries` primaries with `replicas`
// replicas each, every node a redis-server process on a free loopback port (`cluster-enabled yes`), joined by
// `redis-cli --cluster create` as an operator would. Not the one-node cluster of `startRedisServer({ cluster:
// true })`: MOVED, slots spread over several primaries and a replica's promotion only happen here.

const run = promisify(execFile)

export interface ClusterNode {
  port: number
  /** `127.0.0.1:<port>` */
  address: string
  server: RedisServer
}

export interface RedisClusterOptions {
  /** @default 3 */
  primaries?: number
  /** Replicas per primary. @default 1 */
  replicas?: number
  /** Settings every node gets after the cluster ones, as `--name value` pairs. @default [] */
  args?: string[]
  /** How long the cluster may take to say `cluster_state:ok` everywhere. @default 30000 */
  readyTimeoutMs?: number
}

export interface PrivateRedisCluster {
  nodes: ClusterNode[]
  /** `host:port,...` of every node: the value of REDIS_CLUSTER_NODES. */
  seeds: string
  /** Where the cluster is, as `connectRedis` (@circles/redis-wire) takes it (REDIS_URL unused). */
  target: { redisUrl: string; redisClusterNodes: { host: string; port: number }[] }
  /** The nodes that are primaries now (a failover changes them), by CLUSTER NODES of a live node. */
  primaries(): Promise<ClusterNode[]>
  /** The node at `port`. */
  node(port: number): ClusterNode
  /** Waits until every live node says `cluster_state:ok` and knows the same primaries. */
  waitOk(timeoutMs?: number): Promise<void>
  /** Stops every node (SIGKILL: nothing is kept) and removes their folders. Idempotent. */
  stop(): Promise<void>
}

/** Whether `redis-cli` (which builds the cluster) is here: false skips locally, CI=true fails. */
export function haveRedisCli(tests: string): boolean {
  return needPart(findOnPath('redis-cli') !== undefined, {
    what: 'redis-cli on the PATH',
    install: 'apt-get install -y redis-tools (Debian ships it with redis-server)',
    tests,
  })
}

/** Starts and joins a private Redis Cluster on loopback; resolves once every node says the state is ok. */
export async function startRedisCluster(
  opts: RedisClusterOptions = {},
): Promise<PrivateRedisCluster> {
  const primaries = opts.primaries ?? 3
  const replicas = opts.replicas ?? 1
  const count = primaries * (1 + replicas)
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'))
  const nodes: ClusterNode[] = []
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.server.crash()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < count; i++) {
      const nodeDir = join(dir, String(i))
      mkdirSync(nodeDir)
      const server = await startRedisProcess({
        args: [
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          nodeDir,
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(nodeDir, 'nodes.conf'),
          // a killed primary is replaced within a couple of seconds (the failover test waits for it)
          '--cluster-node-timeout',
          '2000',
          ...(opts.args ?? []),
        ],
      })
      nodes.push({ port: server.port, address: `127.0.0.1:${server.port}`, server })
    }
    const create = ['--cluster', 'create', ...nodes.map((n) => n.address)]
    await run('redis-cli', [...create, '--cluster-replicas', String(replicas), '--cluster-yes'], {
      timeout: 60_000,
    })
    const cluster = handle(nodes, stop)
    await cluster.waitOk(opts.readyTimeoutMs ?? 30_000)
    return cluster
  } catch (err) {
    await stop()
    throw err
  }
}

function handle(nodes: ClusterNode[], stop: () => Promise<void>): PrivateRedisCluster {
  let stopping: Promise<void> | undefined
  const live = () => nodes.filter((n) => !n.server.hasExited())
  return {
    nodes,
    seeds: nodes.map((n) => n.address).join(','),
    target: {
      redisUrl: 'redis://127.0.0.1:6379',
      redisClusterNodes: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    },
    node(port) {
      const n = nodes.find((x) => x.port === port)
      if (!n) throw new Error(`no cluster node on port ${port}`)
      return n
    },
    async primaries() {
      const first = live()[0]
      if (!first) return []
      const ports = await withNode(first.port, async (r) => primaryPorts(await nodesText(r)))
      return nodes.filter((n) => ports.includes(n.port))
    },
    async waitOk(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      let last = ''
      for (;;) {
        last = await clusterSays(live())
        if (last === '') return
        if (Date.now() > deadline) throw new Error(`the cluster did not become ok: ${last}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    stop() {
      stopping ??= stop()
      return stopping
    },
  }
}

/** '' when every node says the cluster is ok and all agree on the primaries; else what is not yet so. */
async function clusterSays(nodes: ClusterNode[]): Promise<string> {
  let primaries: string | undefined
  for (const n of nodes) {
    const says = await withNode(n.port, async (r) => {
      const info = String(await r.call('CLUSTER', 'INFO'))
      if (!info.includes('cluster_state:ok')) return `${n.address} is not ok yet`
      const text = await nodesText(r)
      const mine = primaryPorts(text).join(',')
      if (primaries !== undefined && mine !== primaries)
        return `${n.address} sees primaries ${mine}`
      // gossip about replicas comes after the slots: a failover test needs every replica known
      const replicas = text.split('\n').filter((l) => {
        const flags = (l.split(' ')[2] ?? '').split(',')
        return flags.includes('slave') && !flags.some((f) => f.startsWith('fail'))
      })
      const healthy = replicas.length + mine.split(',').length
      if (healthy !== nodes.length) return `${n.address} sees ${healthy} of ${nodes.length} nodes`
      // a replica that never synced refuses to take over its primary's slots ("data too old")
      const replication = String(await r.info('replication'))
      if (replication.includes('role:slave') && !replication.includes('master_link_status:up'))
        return `${n.address} has not synced with its primary yet`
      primaries = mine
      return ''
    }).catch((err: Error) => `${n.address}: ${err.message}`)
    if (says !== '') return says
  }
  return ''
}

async function nodesText(r: Redis): Promise<string> {
  return String(await r.call('CLUSTER', 'NODES'))
}

/** Ports of the primaries that own slots and are not marked failed, in order. */
function primaryPorts(nodes: string): number[] {
  const ports: number[] = []
  for (const line of nodes.split('\n')) {
    const [, addr, flags, , , , , , ...slots] = line.split(' ')
    if (!addr || !flags?.includes('master') || flags.includes('fail') || slots.length === 0)
      continue
    ports.push(Number(addr.split('@')[0]?.split(':')[1]))
  }
  return ports.sort((a, b) => a - b)
}

async function withNode<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  r.on('error', () => {})
  try {
    await r.connect()
    return await fn(r)
  } finally {
    r.disconnect()
  }
}
