import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { freePort } from './free-port.js'
import { pingReply } from './probe.js'

// The one way this repo runs a redis-server process: `pnpm start`'s private Redis (ops), the demo's, the
// test runner's, and the tests' and benchmarks' throw-away ones (testkit). Each caller brings its own
// settings; this part only starts the process, waits until it answers, and stops or kills it.

export class RedisStartError extends Error {
  override name = 'RedisStartError'
}

export interface RedisServerOptions {
  /** @default a free loopback port */
  port?: number
  /** Settings after `--port <port> --bind 127.0.0.1`, as `--name value` pairs. @default [] */
  args?: string[]
  /** @default 'redis-server' (looked up on the PATH) */
  binary?: string
  /** Appends the server's stdout and stderr to this file; without it only stderr is kept, for errors. */
  logFile?: string
  /** In a process group of its own, so a ctrl-C in the terminal does not reach it. @default false */
  detached?: boolean
  /**
   * When it counts as started: `pong` once PING answers PONG (not while it loads its data: a test's next
   * command must not meet LOADING); `reply` once anything answers (`pnpm start` waits for a big AOF no
   * longer than it must: the services ride out LOADING by themselves). @default 'pong'
   */
  readyWhen?: 'pong' | 'reply'
  /** @default 10000 */
  readyTimeoutMs?: number
  /** Pause between two probes while it starts. @default 50 */
  pollMs?: number
}

export interface RedisServer {
  url: string
  port: number
  pid: number | undefined
  /** The process, for callers that watch its exit. */
  child: ChildProcess
  hasExited(): boolean
  /** SIGTERM (Redis fsyncs its AOF and exits), SIGKILL after `timeoutMs`. Idempotent. */
  stop(timeoutMs?: number): Promise<void>
  /** SIGKILL, as a crash would, and waits until it is gone. */
  crash(): Promise<void>
}

/** Starts `redis-server` on 127.0.0.1 and resolves once it answers. @throws RedisStartError */
export async function startRedisProcess(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort())
  const args = ['--port', String(port), '--bind', '127.0.0.1', ...(opts.args ?? [])]
  const child = spawn(opts.binary ?? 'redis-server', args, {
    detached: opts.detached ?? false,
    stdio: ['ignore', opts.logFile ? 'pipe' : 'ignore', 'pipe'],
  })
  let stderr = ''
  if (opts.logFile) {
    const log = createWriteStream(resolve(opts.logFile), { flags: 'a' })
    child.stdout?.pipe(log)
    child.stderr?.pipe(log)
  } else {
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
  }
  let exited = false
  const exit = new Promise<void>((done) => {
    child.once('exit', () => {
      exited = true
      done()
    })
  })
  // No binary, or not executable: there will be no 'exit'.
  child.once('error', () => {
    exited = true
  })

  const why = () =>
    opts.logFile ? `. Last lines of ${opts.logFile}:\n${tail(opts.logFile, 8)}` : `: ${stderr}`
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000)
  for (;;) {
    const line = await pingReply('127.0.0.1', port, 500)
    const ready = opts.readyWhen === 'reply' ? line !== undefined : line === '+PONG'
    if (ready) break
    if (exited || Date.now() > deadline) {
      if (!exited) child.kill('SIGKILL')
      throw new RedisStartError(`redis-server did not start on 127.0.0.1:${port}${why()}`)
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 50))
  }

  let stopping: Promise<void> | undefined
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    child,
    hasExited: () => exited,
    stop(timeoutMs = 5000) {
      stopping ??= stopChild(child, exit, () => exited, timeoutMs)
      return stopping
    },
    async crash() {
      if (exited) return
      child.kill('SIGKILL')
      await exit
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
