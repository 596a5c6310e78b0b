import { type ChildProcess, spawn } from 'node:child_process'
import { accessSync, constants, createWriteStream, mkdirSync, readFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { delimiter, dirname, join, resolve } from 'node:path'
import { REQUIRED_REDIS_SETTINGS } from '@circles/interaction-index'

// `pnpm start` on a fresh machine: when no REDIS_URL is given and nothing answers on the local port, it runs a
// private redis-server with its data under ./data. AOF on (the index and the unread stream survive a restart)
// and `noeviction` (eviction would silently drop index keys and stream entries nobody has read yet).

export class RedisNotFoundError extends Error {
  override name = 'RedisNotFoundError'
}

export class RedisStartError extends Error {
  override name = 'RedisStartError'
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

/** Full path of `name` on the PATH, or undefined. */
export function findOnPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue
    const file = join(dir, name)
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch {
      // not here; keep looking
    }
  }
  return undefined
}

/** True when something answers a Redis PING on host:port within `timeoutMs`. */
export function redisAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection({ host, port })
    let reply = ''
    const finish = (ok: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      done(ok)
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.on('connect', () => socket.write('PING\r\n'))
    // +PONG, or -NOAUTH / -ERR from a Redis that wants a password: either way a Redis is there.
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1')
      if (reply.includes('\r\n')) finish(reply.startsWith('+') || reply.startsWith('-'))
    })
    socket.on('error', () => finish(false))
  })
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

export function privateRedisArgs(opts: { port: number; dataDir: string }): string[] {
  return [
    '--port',
    String(opts.port),
    '--bind',
    '127.0.0.1',
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
    ...privateRedisArgs({ port, dataDir: opts.dataDir }),
    '--logfile',
    resolve(opts.logFile),
    ...(opts.extraArgs ?? []),
  ]
  // Its own process group: a ctrl-C in the terminal reaches only the supervisor, which stops the services
  // first and Redis last, so nothing loses its Redis while it is still flushing.
  const child = spawn(binary, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const early = createWriteStream(resolve(opts.logFile), { flags: 'a' })
  child.stdout?.pipe(early)
  child.stderr?.pipe(early)
  let exited = false
  const exit = new Promise<void>((done) => {
    child.once('exit', () => {
      exited = true
      done()
    })
  })
  child.once('error', () => {
    exited = true
  })

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 15_000)
  while (!(await redisAnswers('127.0.0.1', port, 500))) {
    if (exited || Date.now() > deadline) {
      if (!exited) child.kill('SIGKILL')
      throw new RedisStartError(
        `redis-server did not start on 127.0.0.1:${port}. Last lines of ${opts.logFile}:\n${tail(opts.logFile, 8)}`,
      )
    }
    await new Promise((r) => setTimeout(r, 100))
  }

  // Its own process group means nothing else stops it if this process dies without calling stop():
  // SIGTERM still lets it flush the AOF.
  const onExit = () => {
    if (!exited) child.kill('SIGTERM')
  }
  process.once('exit', onExit)
  let stopping: Promise<void> | undefined
  child.once('exit', (code, signal) => {
    if (!stopping) opts.onUnexpectedExit?.(code, signal)
  })
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    stop(timeoutMs = 30_000) {
      process.off('exit', onExit)
      stopping ??= stopChild(child, exit, () => exited, timeoutMs)
      return stopping
    },
  }
}

async function stopChild(
  child: ChildProcess,
  exit: Promise<void>,
  hasExited: () => boolean,
  timeoutMs: number,
): Promise<void> {
  if (hasExited()) return
  child.kill('SIGTERM')
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), timeoutMs)
  })
  const result = await Promise.race([exit, timeout])
  clearTimeout(timer)
  if (result === 'timeout') {
    child.kill('SIGKILL')
    await exit
  }
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}
