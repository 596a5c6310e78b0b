import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startRedisProcess } from '@circles/redis-server'
import { Redis } from 'ioredis'

export interface PrivateRedis {
  url: string
  port: number
  pid: number
  /** Stops the server (SIGTERM, then SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>
  /** Kills the server with SIGKILL, as a crash would, and waits until it is gone. */
  crash(): Promise<void>
}

export interface RedisServerOptions {
  /** @default a free loopback port */
  port?: number
  /**
   * A one-node Redis Cluster that owns every slot (the cluster-mode tests), its nodes.conf in a temporary
   * folder removed at stop. @default false
   */
  cluster?: boolean
}

/**
 * Starts a private `redis-server` on a free loopback port with no persistence, for tests and
 * benchmarks that need their own settings, measure memory, or must not disturb the shared Redis.
 * `extraArgs` come last, so they can turn persistence on (`--appendonly yes`, `--dir`).
 */
export async function startRedisServer(
  extraArgs: string[] = [],
  opts: RedisServerOptions = {},
): Promise<PrivateRedis> {
  const dir = opts.cluster ? mkdtempSync(join(tmpdir(), 'redis-cluster-')) : undefined
  const cluster = dir
    ? ['--dir', dir, '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf')]
    : []
  const server = await startRedisProcess({
    port: opts.port,
    args: ['--save', '', '--appendonly', 'no', ...cluster, ...extraArgs],
  })
  const removeDir = () => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  }
  if (dir) {
    try {
      await claimAllSlots(server.url)
    } catch (err) {
      await server.crash()
      removeDir()
      throw err
    }
  }
  return {
    url: server.url,
    port: server.port,
    pid: server.pid as number,
    crash: () => server.crash(),
    async stop() {
      await server.stop(5000)
      removeDir()
    },
  }
}

/** Gives a fresh cluster node every slot and waits until it says the cluster is ok. */
async function claimAllSlots(url: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    await redis.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383')
    for (let i = 0; i < 200; i++) {
      const info = (await redis.call('CLUSTER', 'INFO')) as string
      if (info.includes('cluster_state:ok')) return
      await new Promise((r) => setTimeout(r, 50))
    }
  } finally {
    redis.disconnect()
  }
}

export interface RollbackRedis {
  port: number
  url: string
  /** A client of the server's (it reconnects by itself; its errors while the server is down are ignored). */
  redis: Redis
  /** Takes the snapshot that `rollback` returns to (SAVE). */
  snapshot(): Promise<void>
  /** Kills the server (SIGKILL) and starts it again, on the same port, from the snapshot. */
  rollback(): Promise<void>
  /** Disconnects the client, kills the server and removes its data folder. */
  stop(): Promise<void>
}

/**
 * A private redis-server that can be rolled back to a snapshot, on the same port: how a Redis killed while
 * its once-a-second AOF fsync runs comes back (appendfsync everysec), without writes it had answered.
 */
export async function startRollbackRedis(): Promise<RollbackRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-rollback-'))
  const port = await freePort()
  let server = await startRedisServer(['--dir', dir], { port })
  const redis = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  return {
    port,
    url: server.url,
    redis,
    async snapshot() {
      await redis.call('SAVE')
    },
    async rollback() {
      await server.crash()
      server = await startRedisServer(['--dir', dir], { port })
    },
    async stop() {
      redis.disconnect()
      await server.crash()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
