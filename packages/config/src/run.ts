/** What `runService` logs through; a pino logger (`createLogger('x:main')`) is one. */
export interface RunLog {
  info(obj: object, msg: string): void
  error(obj: object, msg: string): void
  fatal(obj: object, msg: string): void
}

export interface RunnableService {
  start(): Promise<unknown>
  close(): Promise<void>
}

/**
 * The whole life of a service process: build it (config errors included), start it, close it on the first
 * SIGINT/SIGTERM, and report failure through `process.exitCode`, never `process.exit()`, so that logs
 * flush. A second signal gets Node's default handling, so a stuck shutdown can still be interrupted.
 */
export async function runService(log: RunLog, create: () => RunnableService): Promise<void> {
  let service: RunnableService
  try {
    service = create()
  } catch (err) {
    log.fatal({ err }, 'invalid configuration')
    process.exitCode = 1
    return
  }
  const stop = (signal: string) => {
    log.info({ signal }, 'stopping')
    service.close().catch((err: unknown) => {
      log.error({ err }, 'close failed')
      process.exitCode = 1
    })
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    await service.start()
  } catch (err) {
    log.fatal({ err }, 'failed to start')
    // An error may name its own code, for a supervisor told not to restart after it (a refused login).
    const code = (err as { exitCode?: unknown } | null)?.exitCode
    process.exitCode = typeof code === 'number' && Number.isInteger(code) && code > 0 ? code : 1
    await service.close().catch((closeErr: unknown) => log.error({ err: closeErr }, 'close failed'))
  }
}
