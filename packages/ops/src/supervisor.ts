import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

// The small process supervisor behind `pnpm start`: the PM2 ecosystem's apps, run in the foreground with
// restarts on crash (exponential backoff, like PM2's exp_backoff_restart_delay), raw log files under ./logs,
// readable lines on the terminal, and an ordered, graceful stop on ctrl-C. No daemon and no global install,
// so a newcomer's first run needs nothing but Node; PM2 (ecosystem.config.cjs) is for running it for real.

export interface AppSpec {
  name: string
  /** JS file run with the current Node. */
  script: string
  /** @default 1 */
  instances?: number
  /** Time to wait after SIGTERM before SIGKILL. @default 15000 */
  killTimeoutMs?: number
  /** Node flags before the script (the ecosystem file's `node_args`). */
  nodeArgs?: string[]
  env?: Record<string, string>
  /** Exit codes after which the app is not restarted (the ecosystem file's `stop_exit_codes`). */
  stopExitCodes?: number[]
}

export interface SupervisorOptions {
  cwd: string
  env: Record<string, string>
  /** Each instance's raw output goes to `<logDir>/<name>-<instance>.log`. */
  logDir: string
  /** Called with every output line of every instance (already formatted), and the supervisor's own lines. */
  print: (line: string) => void
  /** `pretty` turns pino JSON lines into short readable ones; `json` passes them through. @default pretty */
  format?: 'pretty' | 'json'
  /** First restart delay; it doubles on every crash in a row. @default 200 */
  restartDelayMs?: number
  /** @default 15000 */
  maxRestartDelayMs?: number
  /** A run shorter than this counts as a crash at start. @default 10000 */
  minUptimeMs?: number
  /** Give up after this many crashes at start in a row (a config error will not fix itself). @default 5 */
  maxStartCrashes?: number
  /** Called once when an app keeps crashing at start; the caller decides to stop everything. */
  onGiveUp?: (label: string, reason: string) => void
  /**
   * Called when an app exits with one of its `stopExitCodes` (the bot's refused login): it stays stopped and
   * the others keep running, as under PM2.
   */
  onFinalExit?: (label: string, reason: string) => void
}

export interface Supervisor {
  start(): void
  /** Stops every instance (SIGTERM, then SIGKILL after its kill timeout); idempotent. */
  stop(): Promise<void>
  /** Number of instances currently running. */
  running(): number
}

interface Instance {
  app: AppSpec
  index: number
  label: string
  child?: ChildProcess
  exited?: Promise<void>
  startedAt: number
  startCrashes: number
  restartTimer?: NodeJS.Timeout
  log: WriteStream
  lastLines: string[]
}

export function createSupervisor(apps: AppSpec[], opts: SupervisorOptions): Supervisor {
  const baseDelay = opts.restartDelayMs ?? 200
  const maxDelay = opts.maxRestartDelayMs ?? 15_000
  const minUptime = opts.minUptimeMs ?? 10_000
  const maxStartCrashes = opts.maxStartCrashes ?? 5
  const format = opts.format ?? 'pretty'
  mkdirSync(opts.logDir, { recursive: true })

  const instances: Instance[] = apps.flatMap((app) => {
    const n = app.instances ?? 1
    return Array.from({ length: n }, (_, index) => {
      const label = n > 1 ? `${app.name}-${index}` : app.name
      return {
        app,
        index,
        label,
        startedAt: 0,
        startCrashes: 0,
        log: createWriteStream(join(opts.logDir, `${app.name}-${index}.log`), { flags: 'a' }),
        lastLines: [],
      }
    })
  })
  const width = Math.max(...instances.map((i) => i.label.length))
  let stopping: Promise<void> | undefined

  function say(line: string) {
    opts.print(`${clock()} ${'start'.padEnd(width)} ${line}`)
  }

  function onLine(inst: Instance, line: string) {
    inst.log.write(`${line}\n`)
    inst.lastLines.push(line)
    if (inst.lastLines.length > 10) inst.lastLines.shift()
    opts.print(format === 'json' ? line : prettyLine(inst.label.padEnd(width), line))
  }

  function launch(inst: Instance) {
    inst.restartTimer = undefined
    inst.startedAt = Date.now()
    const child = spawn(process.execPath, [...(inst.app.nodeArgs ?? []), inst.app.script], {
      cwd: opts.cwd,
      // NODE_APP_INSTANCE is what PM2 sets too, so a service can name itself (e.g. the indexer's consumer).
      env: { ...inst.app.env, ...opts.env, NODE_APP_INSTANCE: String(inst.index) },
      // Own process group: a terminal ctrl-C reaches only the supervisor, which stops things in order.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    inst.child = child
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (l) => onLine(inst, l))
    }
    inst.exited = new Promise((done) => {
      child.once('error', (err) => {
        onLine(inst, `failed to start: ${err.message}`)
      })
      // 'close', not 'exit': it comes once the output pipes are drained too, so a service's last lines
      // ("stopped") are printed before the supervisor moves on.
      child.once('close', (code, signal) => {
        inst.child = undefined
        done()
        if (stopping) return
        onExit(inst, code, signal)
      })
    })
  }

  function onExit(inst: Instance, code: number | null, signal: NodeJS.Signals | null) {
    const uptime = Date.now() - inst.startedAt
    inst.startCrashes = uptime < minUptime ? inst.startCrashes + 1 : 1
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`
    // An exit the app declares final (the bot's refused login): restarting would only repeat it.
    if (code !== null && inst.app.stopExitCodes?.includes(code)) {
      say(`${inst.label} ${how}, which it declares final: not restarted`)
      opts.onFinalExit?.(inst.label, `${how}; its last lines:\n${inst.lastLines.join('\n')}`)
      return
    }
    if (inst.startCrashes >= maxStartCrashes) {
      say(
        `${inst.label} ${how}, ${inst.startCrashes} times in a row within ${minUptime} ms of starting`,
      )
      opts.onGiveUp?.(inst.label, `${how}; its last lines:\n${inst.lastLines.join('\n')}`)
      return
    }
    const delay = Math.min(maxDelay, baseDelay * 2 ** (inst.startCrashes - 1))
    say(`${inst.label} ${how}; restarting in ${delay} ms`)
    inst.restartTimer = setTimeout(() => launch(inst), delay)
  }

  async function stopOne(inst: Instance) {
    if (inst.restartTimer) clearTimeout(inst.restartTimer)
    const child = inst.child
    if (child?.pid !== undefined && inst.exited) {
      signalGroup(child.pid, 'SIGTERM')
      let timer: NodeJS.Timeout | undefined
      const timedOut = await Promise.race([
        inst.exited.then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), inst.app.killTimeoutMs ?? 15_000)
        }),
      ])
      clearTimeout(timer)
      if (timedOut) {
        say(`${inst.label} did not stop within ${inst.app.killTimeoutMs ?? 15_000} ms: killing it`)
        signalGroup(child.pid, 'SIGKILL')
        await inst.exited
      }
    }
    await new Promise<void>((r) => inst.log.end(r))
  }

  // The children live in their own process groups, so nothing else stops them if this process dies
  // without running stop() (an uncaught error, a closed terminal pipe): kill them on the way out.
  const killAllOnExit = () => {
    for (const inst of instances) if (inst.child?.pid) signalGroup(inst.child.pid, 'SIGKILL')
  }

  return {
    start() {
      process.once('exit', killAllOnExit)
      for (const inst of instances) launch(inst)
    },
    stop() {
      stopping ??= (async () => {
        // The producer first, so that the consumers and the API drain and stop on a quiet stream; every
        // instance gets its stop even if another one's fails.
        const [first, ...rest] = apps
        const byApp = (a: AppSpec | undefined) => instances.filter((i) => i.app === a)
        await Promise.allSettled(byApp(first).map(stopOne))
        await Promise.allSettled(rest.flatMap((a) => byApp(a).map(stopOne)))
        process.off('exit', killAllOnExit)
      })()
      return stopping
    },
    running() {
      return instances.filter((i) => i.child).length
    },
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals) {
  try {
    process.kill(-pid, signal)
  } catch {
    // already gone
  }
}

function clock(): string {
  return new Date().toISOString().slice(11, 23)
}

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
}
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'name', 'err'])

/** One pino JSON line as `12:00:01.234 indexer-0 INFO  consumer: ready {"group":"indexer"}`. */
export function prettyLine(label: string, line: string): string {
  let rec: Record<string, unknown>
  try {
    const parsed: unknown = JSON.parse(line)
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error()
    rec = parsed as Record<string, unknown>
  } catch {
    return `${clock()} ${label} ${line}`
  }
  const time = typeof rec.time === 'string' ? rec.time.slice(11, 23) : clock()
  const level = LEVELS[Number(rec.level)] ?? 'INFO '
  const name = typeof rec.name === 'string' ? `${rec.name}: ` : ''
  const extra: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(rec)) if (!SKIP.has(k)) extra[k] = v
  const rest = Object.keys(extra).length > 0 ? ` ${JSON.stringify(extra)}` : ''
  const err = rec.err as { message?: string; stack?: string } | undefined
  // Warnings repeat (a relay that cannot be reached, every few seconds): their message is enough here, and
  // the stack stays in the log file. Errors keep their stack.
  const errText = !err
    ? ''
    : Number(rec.level) >= 50
      ? `\n    ${err.stack ?? err.message ?? JSON.stringify(err)}`
      : ` (${err.message ?? JSON.stringify(err)})`
  return `${time} ${label} ${level} ${name}${String(rec.msg ?? '')}${rest}${errText}`
}
