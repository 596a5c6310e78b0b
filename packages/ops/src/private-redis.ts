import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { REQUIRED_REDIS_SETTINGS } from '@circles/interaction-index'
import { findOnPath, startRedisProcess } from '@circles/redis-server'

// `pnpm start` on a fresh machine: when no REDIS_URL is given and nothing answers on the local port, it runs a
// private redis-server with its data under ./data. AOF on (the index and the unread stream survive a restart)
// and `noeviction` (eviction would silently drop index keys and stream entries nobody has read yet).

export class RedisNotFoundError extends Error {
  override name = 'RedisNotFoundError'
}

/** Plain-words help printed when there is no Redis and no redis-server binary. */
export function howToGetRedis(port: number): string {
  return [
    `No Redis answers on 127.0.0.1:${port}, REDIS_URL is not set, and there is no redis-server on the PATH.`,
    'Get Redis (7 or newer) one of these ways, then run the command again:',
    '  - the OS package:  sudo apt-get install redis-server   |   brew install redis   |   sudo dnf install redis',
    '  - Docker:          docker compose up -d redis          (Redis with AOF and noeviction, on 127.0.0.1:6379)',
    '  - an existing one: REDIS_URL=redis://host:6379 pnpm start   (or put REDIS_URL in .env)',
  ].join('\n')
}

export interface PrivateRedisOptions {
  /** Folder for the AOF (and the RDB preamble); created if missing. */
  dataDir: string
  /** Redis log file. */
  logFile: string
  /** @default 6379 */
  port?: number
  /** @default redis-server found on the PATH */
  binary?: string
  /** Extra `--name value` settings, appended last. */
  extraArgs?: string[]
  /** @default 15000 */
  readyTimeoutMs?: number
  /** Called once the binary is found, right before it starts. */
  onStarting?: (port: number) => void
  /** Called if Redis exits on its own after it was ready (not through stop()). */
  onUnexpectedExit?: (code: number | null, signal: NodeJS.Signals | null) => void
}

export interface PrivateRedis {
  url: string
  port: number
  pid: number | undefined
  /** Stops Redis gracefully (SIGTERM: it fsyncs the AOF and exits); idempotent. */
  stop(timeoutMs?: number): Promise<void>
}

/** The settings `pnpm start` gives its private Redis (after its port and bind address). */
export function privateRedisArgs(opts: { dataDir: string }): string[] {
  return [
    '--dir',
    resolve(opts.dataDir),
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--maxmemory-policy',
    'noeviction',
    // AOF is the persistence; RDB snapshots would fork the whole dataset again for nothing.
    '--save',
    '',
    '--daemonize',
    'no',
    // The encodings the index's memory figures rely on. The indexer raises them at start too, but with
    // CONFIG SET, which a Redis restart forgets.
    ...Object.entries(REQUIRED_REDIS_SETTINGS).flatMap(([name, value]) => [
      `--${name}`,
      String(value),
    ]),
  ]
}

export async function startPrivateRedis(opts: PrivateRedisOptions): Promise<PrivateRedis> {
  const port = opts.port ?? 6379
  const binary = opts.binary ?? findOnPath('redis-server')
  if (!binary) throw new RedisNotFoundError(howToGetRedis(port))
  opts.onStarting?.(port)
  mkdirSync(opts.dataDir, { recursive: true })
  mkdirSync(dirname(resolve(opts.logFile)), { recursive: true })
  const args = [
    ...privateRedisArgs({ dataDir: opts.dataDir }),
    '--logfile',
    resolve(opts.logFile),
    ...(opts.extraArgs ?? []),
  ]
  const server = await startRedisProcess({
    port,
    args,
    binary,
    logFile: opts.logFile,
    // Its own process group: a ctrl-C in the terminal reaches only the supervisor, which stops the services
    // first and Redis last, so nothing loses its Redis while it is still flushing.
    detached: true,
    readyWhen: 'reply',
    readyTimeoutMs: opts.readyTimeoutMs ?? 15_000,
    pollMs: 100,
  })

  // Its own process group means nothing else stops it if this process dies without calling stop():
  // SIGTERM still lets it flush the AOF.
  const onExit = () => {
    if (!server.hasExited()) server.child.kill('SIGTERM')
  }
  process.once('exit', onExit)
  let stopping = false
  server.child.once('exit', (code, signal) => {
    if (!stopping) opts.onUnexpectedExit?.(code, signal)
  })
  return {
    url: server.url,
    port,
    pid: server.pid,
    stop(timeoutMs = 30_000) {
      process.off('exit', onExit)
      stopping = true
      return server.stop(timeoutMs)
    },
  }
}
