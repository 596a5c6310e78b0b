import { Frame, type WireOptions } from '../src/index.js'

/** A frame of whole commands. */
export function frame(...commands: (string | number | Buffer)[][]): Frame {
  const f = new Frame(16)
  for (const c of commands) f.call(...c)
  return f
}

/** Wire options for a `redis://host:port` URL (the shared test Redis, or a proxy in front of it). */
export function wireOptions(url: string): WireOptions {
  const u = new URL(url)
  return { host: u.hostname, port: u.port ? Number(u.port) : 6379 }
}

/** How a promise settled within `ms`: its value, its error, or 'pending' (a hang, for the assertion). */
export async function settledWithin<T>(
  p: Promise<T>,
  ms: number,
): Promise<{ value: T } | { error: unknown } | 'pending'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'pending'>((resolve) => {
    timer = setTimeout(() => resolve('pending'), ms)
  })
  try {
    return await Promise.race([
      p.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      late,
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** Waits turn by turn of the event loop (not by a timer) until `done()`, so a byte-wise proxy is caught mid-way. */
export async function untilTurn(done: () => boolean, maxTurns = 10_000_000): Promise<void> {
  for (let i = 0; !done(); i++) {
    if (i === maxTurns) throw new Error('condition not reached')
    await new Promise((r) => setImmediate(r))
  }
}
