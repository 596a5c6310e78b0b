import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort } from './net.js'

export interface PrivateRedis {
  url: string
  port: number
  pid: number
  /** Stops the server (SIGTERM, then SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>
  /** Kills the server with SIGKILL, as a crash would, and waits until it is gone. */
  crash(): Promise<void>
}

/**
 * Starts a private `redis-server` on a free loopback port with no persistence, for tests and
 * benchmarks that need their own settings, measure memory, or must not disturb the shared Redis.
 */
export async function startRedisServer(
  extraArgs: string[] = [],
  opts: { port?: number } = {},
): Promise<PrivateRedis> {
  const port = opts.port ?? (await freePort())
  const proc: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const url = `redis://127.0.0.1:${port}`
  const probe = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  // Refused connections are expected until the server listens; they are retried below.
  probe.on('error', () => undefined)
  const deadline = Date.now() + 10_000
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited: ${stderr}`)
    try {
      await probe.connect()
      // Also an error (LOADING) while the server reads its AOF after a restart.
      await probe.ping()
      break
    } catch {
      probe.disconnect()
      if (Date.now() > deadline) {
        proc.kill('SIGKILL')
        throw new Error(`redis-server did not answer on ${url}: ${stderr}`)
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  probe.disconnect()
  let stopped: Promise<void> | undefined
  const gone = () => proc.exitCode !== null || proc.signalCode !== null
  return {
    url,
    port,
    pid: proc.pid as number,
    async crash() {
      if (gone()) return
      const exited = once(proc, 'exit')
      proc.kill('SIGKILL')
      await exited
    },
    stop() {
      stopped ??= (async () => {
        if (gone()) return
        const exited = once(proc, 'exit')
        proc.kill('SIGTERM')
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(timer)
      })()
      return stopped
    },
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
