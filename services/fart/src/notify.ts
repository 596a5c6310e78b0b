import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'

// Redis pub/sub between API processes, on one subscriber connection per app:
// - `circleReadyChannel`: a circle computation ended (written, or failed and its lock released). Requests
//   waiting for another process's computation wake at once instead of polling every few ms.
// - `optOutsChannel`: the opt-out set changed. Every process drops its in-process circle copies at once.
// Pub/sub delivers at most once and nothing while the subscriber reconnects, so neither is the only
// guarantee: waiters still poll (slowly), in-process copies still expire (LOCAL_CACHE_MS), and after a
// reconnect the copies are dropped, since a change may have been missed.

export interface Notifier {
  /**
   * Resolves when `key` is announced ready, or after `ms` (whichever first). Register before checking the
   * cache: an announcement between the check and the wait is then not lost.
   */
  waitFor(key: string, ms: number): { promise: Promise<void>; cancel(): void }
  /** Called (in this process) whenever in-process copies must go: an opt-out change or a reconnect. */
  onOptOutChange(fn: () => void): void
  close(): Promise<void>
}

export async function createNotifier(deps: {
  redis: Redis
  schema: RedisSchema
  log: Logger
}): Promise<Notifier> {
  const { schema, log } = deps
  const waiters = new Map<string, Set<() => void>>()
  const listeners: (() => void)[] = []
  const dropCopies = () => {
    for (const fn of listeners) fn()
  }
  // A subscribed connection can run no other command: a dedicated one, closed with the app.
  // Resubscribed here, not by ioredis: its own resubscription after a reconnect has no rejection handler,
  // so a close racing it (shutdown right after Redis came back) was an unhandled "Connection is closed".
  const sub = deps.redis.duplicate({
    lazyConnect: true,
    enableOfflineQueue: true,
    autoResubscribe: false,
  })
  const channels = [schema.circleReadyChannel, schema.optOutsChannel]
  sub.on('error', (err: unknown) => log.warn({ err }, 'pub/sub connection error (it reconnects)'))
  sub.on('message', (channel: string, message: string) => {
    if (channel === schema.optOutsChannel) return dropCopies()
    const set = waiters.get(message)
    if (set) for (const wake of set) wake()
  })
  let connected = false
  sub.on('ready', () => {
    // What was published while it was away is lost.
    if (connected) {
      dropCopies()
      sub.subscribe(...channels).catch((err: unknown) => {
        log.warn({ err }, 'resubscribing after a reconnect failed (the next reconnect tries again)')
      })
    }
    connected = true
  })
  await sub.connect()
  await sub.subscribe(...channels)

  return {
    waitFor(key, ms) {
      let wake!: () => void
      let timer: NodeJS.Timeout | undefined
      const promise = new Promise<void>((resolve) => {
        wake = resolve
        timer = setTimeout(resolve, ms)
      })
      let set = waiters.get(key)
      if (!set) {
        set = new Set()
        waiters.set(key, set)
      }
      set.add(wake)
      const cancel = () => {
        clearTimeout(timer)
        const s = waiters.get(key)
        s?.delete(wake)
        if (s?.size === 0) waiters.delete(key)
      }
      return { promise: promise.then(cancel), cancel }
    },
    onOptOutChange(fn) {
      listeners.push(fn)
    },
    async close() {
      for (const set of waiters.values()) for (const wake of set) wake()
      waiters.clear()
      try {
        await sub.quit()
      } catch {
        sub.disconnect()
      }
    },
  }
}
