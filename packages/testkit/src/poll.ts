import { isDeepStrictEqual } from 'node:util'

export interface PollOptions {
  /** @default 30000 */
  timeoutMs?: number
  /** @default 100 */
  pollMs?: number
}

/**
 * Reads until `done(value)` holds or the deadline passes, and returns the last value read either way: the
 * caller asserts on it, so a run that never converged fails with a diff of what it saw, not a bare
 * "timed out". A read that throws (a service still starting) is retried; if no read ever succeeded, the
 * last error is thrown at the deadline.
 */
export async function pollUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  { timeoutMs = 30_000, pollMs = 100 }: PollOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: { value: T } | undefined
  let error: unknown
  for (;;) {
    try {
      last = { value: await read() }
      if (done(last.value)) return last.value
    } catch (err) {
      error = err
    }
    if (Date.now() > deadline) {
      if (last) return last.value
      throw error
    }
    await new Promise((r) => setTimeout(r, pollMs))
  }
}

/** `pollUntil` the value deep-equals `expected`; returns the last value for the caller's `toEqual`. */
export function pollUntilEqual<T>(
  read: () => Promise<T>,
  expected: T,
  opts?: PollOptions,
): Promise<T> {
  return pollUntil(read, (v) => isDeepStrictEqual(v, expected), opts)
}
