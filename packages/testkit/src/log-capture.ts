// The cluster tests' eye on logs: what a service logged through its pino logger while a test ran, and what
// a cross-slot mistake looks like in it.

/**
 * A cross-slot mistake: Redis's CROSSSLOT, ioredis refusing a pipeline or a command over slots or nodes, a
 * redirection a client did not follow.
 */
export const CROSS_SLOT_ERROR =
  /CROSSSLOT|same slots? allocation group|should belong to the same slot|MOVED|ASK /

/**
 * The lines written through `root` (a pino root logger; its children share its stream) from now until
 * `stop()`, not printed meanwhile. Tests run with LOG_LEVEL=silent: the level goes to `info` meanwhile, so
 * loggers made from now on (a service's own) log again.
 */
export function captureLogLines(root: { level: string }): { lines: string[]; stop(): void } {
  // pino's stream symbol (pino.symbols.streamSym), found without a dependency on pino here
  const sym = Object.getOwnPropertySymbols(root).find((s) => s.description === 'pino.stream')
  const stream = (root as Record<symbol, unknown>)[sym as symbol] as { write(s: string): boolean }
  const write = stream.write
  const level = root.level
  root.level = 'info'
  const lines: string[] = []
  stream.write = (s: string) => {
    lines.push(s)
    return true
  }
  return {
    lines,
    stop() {
      stream.write = write
      root.level = level
    },
  }
}
