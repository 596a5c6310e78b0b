import { type Logger, pino } from 'pino'

export type { Logger } from 'pino'

// One root logger per process; modules take children named by role (`indexer:consumer`). The level comes
// straight from LOG_LEVEL (validated by each service's config) because pino children copy their parent's
// level when created, so it must be right before the first module asks for a logger.
const root: Logger = pino({
  level: process.env.LOG_LEVEL ?? 'info',
  base: { pid: process.pid },
  timestamp: pino.stdTimeFunctions.isoTime,
})

export function createLogger(name: string): Logger {
  return root.child({ name })
}

export const rootLogger = root
export { type RunnableService, runService } from './run.js'
