import { type Logger, pino } from 'pino'

export type { Logger } from 'pino'

// One root logger per process; modules take children named by role (`indexer:consumer`). The level comes
// straight from LOG_LEVEL (validated by each service's config) because pino children copy their parent's
// level when created, so it must be right before the first module asks for a logger. An unknown level
// falls back to info here, so that pino does not throw at import: the config's check then fails the start
// with a message that names LOG_LEVEL.
const level = process.env.LOG_LEVEL ?? 'info'
const root: Logger = pino({
  level: level in pino.levels.values || level === 'silent' ? level : 'info',
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
})

export function createLogger(name: string): Logger {
  return root.child({ name })
}

export const rootLogger = root

/**
 * Logs a Redis client's connection errors, at most one every 10 s. ioredis reconnects on its own and emits
 * an error for every failed attempt; a client without a listener prints "[ioredis] Unhandled error event"
 * to stderr instead, outside the structured logs.
 */
export function logConnectionErrors(
  client: { on(event: 'error', listener: (err: Error) => void): unknown },
  log: Logger,
  what = 'Redis connection',
): void {
  let lastWarned = Number.NEGATIVE_INFINITY
  client.on('error', (err) => {
    if (Date.now() - lastWarned < 10_000) return
    lastWarned = Date.now()
    log.warn({ err }, `${what} error (ioredis keeps reconnecting)`)
  })
}
