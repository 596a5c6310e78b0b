import type { Logger } from '@circles/logging'
import { classifyRedisError, type RedisErrorClass, type RedisErrorKind } from './errors.js'
import type { IndexerCounters } from './metrics.js'

/**
 * Wait before retry `attempt` (1-based): `minMs` doubling up to `maxMs`, then a random part of it taken
 * off (down to half), so that indexers refused at the same moment do not all come back at the same one.
 * Pure given `random`.
 */
export function backoffDelay(
  attempt: number,
  minMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30))
  return Math.max(1, Math.round(cap * (1 - random() / 2)))
}

/** While Redis refuses: what it said, since when (ms), how many failures, the latest wait. */
export interface BackoffState {
  kind: RedisErrorKind
  since: number
  failures: number
  delayMs: number
}

/** Thrown instead of retrying once the service closes: the batch in hand stays pending, unacknowledged. */
export class IndexerStopping extends Error {
  override name = 'IndexerStopping'
}

export interface FaultHandlerDeps {
  minMs: number
  maxMs: number
  counters: IndexerCounters
  /** Creates the consumer group again (NOGROUP). */
  recreateGroup(): Promise<void>
  log: Logger
}

export interface FaultHandler {
  /**
   * Counts a failure of attempt `attempt` of `what` and, unless it is about an entry's data (`isolate`,
   * returned at once), recreates the group if it is gone and waits the back-off. Throws IndexerStopping
   * when the service closes meanwhile.
   */
  failed(err: unknown, attempt: number, what: string): Promise<RedisErrorClass>
  /** Waits the back-off of attempt `attempt` as for an error of `kind` (counted already). */
  backOff(kind: RedisErrorKind, attempt: number, what: string, err: unknown): Promise<void>
  /** A call to Redis went through: the back-off, if any, is over. */
  succeeded(): void
  /** The back-off in progress, or null. While there is one the service reads nothing new. */
  state(): BackoffState | null
  /** Ends every wait at once (close). */
  stop(): void
}

export function createFaultHandler(d: FaultHandlerDeps): FaultHandler {
  let state: BackoffState | null = null
  let stopped = false
  let wake: () => void = () => {}
  const woken = new Promise<void>((resolve) => {
    wake = resolve
  })

  async function backOff(kind: RedisErrorKind, attempt: number, what: string, err: unknown) {
    const delayMs = backoffDelay(attempt, d.minMs, d.maxMs)
    if (state === null || state.kind !== kind) {
      d.log.warn(
        { err, kind, what, delayMs },
        'Redis cannot take the work now: backing off, reading stopped, nothing acknowledged',
      )
      state = { kind, since: state?.since ?? Date.now(), failures: 0, delayMs }
    } else {
      d.log.debug({ err, kind, what, attempt, delayMs }, 'still backing off')
    }
    state.failures++
    state.delayMs = delayMs
    await Promise.race([new Promise((r) => setTimeout(r, delayMs).unref()), woken])
    if (stopped) throw new IndexerStopping('closing: left pending', { cause: err })
  }

  return {
    backOff,

    async failed(err, attempt, what) {
      const c = classifyRedisError(err)
      d.counters.errors[c.kind] = (d.counters.errors[c.kind] ?? 0) + 1
      if (stopped) throw new IndexerStopping('closing: left pending', { cause: err })
      if (c.action === 'isolate') return c
      if (c.action === 'recreate-group') {
        await d.recreateGroup().catch((e) => d.log.warn({ err: e }, 'creating the group failed'))
      }
      await backOff(c.kind, attempt, what, err)
      return c
    },

    succeeded() {
      if (state === null) return
      d.log.info(
        { kind: state.kind, failures: state.failures, ms: Date.now() - state.since },
        'Redis takes work again: back-off over',
      )
      state = null
    },

    state: () => (state ? { ...state } : null),

    stop() {
      stopped = true
      wake()
    },
  }
}
