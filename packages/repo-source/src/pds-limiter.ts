import type { IncomingHttpHeaders } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { RateLimitedError, RepoSourceError } from './errors.js'
import { retryAt } from './guarded-get.js'

export interface LimiterClock {
  now(): number
  sleep(ms: number): Promise<void>
}

export interface PdsLimiterOptions {
  /** Tasks in flight to one PDS host at a time. @default 4 */
  perHost?: number
  /** Runs of a rate-limited task after the first, each after the host's pause. @default 3 */
  maxRetries?: number
  /** The pause after a 429 that names no time. @default 60_000 */
  defaultPauseMs?: number
  /**
   * A 429 that asks for a longer wait is not waited out here: the task's error goes to the caller, whose
   * queue reschedules the job at `retryAt` instead of holding a worker. The host stays paused. @default 300_000
   */
  maxPauseMs?: number
  /** Time, for tests. @default Date.now and timers */
  clock?: LimiterClock
}

/** Hands a successful response's headers to the limiter (`ratelimit-remaining: 0` pauses the host). */
export type ObserveHeaders = (headers: IncomingHttpHeaders) => void

interface Host {
  key: string
  active: number
  waiters: (() => void)[]
  /** Epoch ms before which no task of this host starts. */
  pausedUntil: number
  /** A wake-up for the end of the pause is pending. */
  timer: boolean
}

const systemClock: LimiterClock = { now: () => Date.now(), sleep: (ms) => sleep(ms) }

/**
 * Politeness towards each PDS: at most `perHost` tasks at once per host, and a host that rate-limits
 * one task (a 429, or a success with `ratelimit-remaining: 0`) is paused for every task until the time
 * it named; the rate-limited task then runs again, a bounded number of times. A task holds its slot
 * for its whole run (download and read), not just until the response headers.
 */
export class PdsLimiter {
  private readonly hosts = new Map<string, Host>()
  private readonly perHost: number
  private readonly maxRetries: number
  private readonly defaultPauseMs: number
  private readonly maxPauseMs: number
  private readonly clock: LimiterClock

  constructor(opts: PdsLimiterOptions = {}) {
    this.perHost = opts.perHost ?? 4
    this.maxRetries = opts.maxRetries ?? 3
    this.defaultPauseMs = opts.defaultPauseMs ?? 60_000
    this.maxPauseMs = opts.maxPauseMs ?? 300_000
    this.clock = opts.clock ?? systemClock
    if (!(this.perHost >= 1))
      throw new RangeError(`perHost must be at least 1, got ${this.perHost}`)
  }

  /** Runs `task` for the PDS at `pds` (its URL) when the host has a free slot and is not paused. */
  async run<T>(pds: string, task: (observe: ObserveHeaders) => Promise<T>): Promise<T> {
    const key = hostOf(pds)
    for (let attempt = 0; ; attempt++) {
      const host = this.host(key)
      await this.acquire(host)
      try {
        return await task((headers) => this.observe(host, headers))
      } catch (err) {
        if (!(err instanceof RateLimitedError)) throw err
        const until = err.retryAt ?? this.clock.now() + this.defaultPauseMs
        this.pauseHost(host, until)
        if (attempt >= this.maxRetries || until - this.clock.now() > this.maxPauseMs) throw err
      } finally {
        this.release(host)
      }
    }
  }

  /** Starts no task for the host of `pds` before `until` (epoch ms); a later pause wins. */
  pause(pds: string, until: number): void {
    this.pauseHost(this.host(hostOf(pds)), until)
  }

  /** Epoch ms until which the host of `pds` is paused; 0 when it is not. */
  pausedUntil(pds: string): number {
    const host = this.hosts.get(hostOf(pds))
    return host !== undefined && host.pausedUntil > this.clock.now() ? host.pausedUntil : 0
  }

  /** Hosts with state (running, waiting or paused): idle ones are forgotten. */
  get size(): number {
    return this.hosts.size
  }

  private observe(host: Host, headers: IncomingHttpHeaders): void {
    const remaining = headers['ratelimit-remaining']
    if (typeof remaining !== 'string' || remaining.trim() !== '0') return
    const until = retryAt(headers, this.clock.now())
    if (until !== undefined) this.pauseHost(host, until)
  }

  private pauseHost(host: Host, until: number): void {
    host.pausedUntil = Math.max(host.pausedUntil, until)
    // Sets the wake-up, which also forgets the host if nothing uses it by then.
    this.pump(host)
  }

  private host(key: string): Host {
    let host = this.hosts.get(key)
    if (host === undefined) {
      host = { key, active: 0, waiters: [], pausedUntil: 0, timer: false }
      this.hosts.set(key, host)
    }
    return host
  }

  private acquire(host: Host): Promise<void> | undefined {
    if (
      host.waiters.length === 0 &&
      host.active < this.perHost &&
      host.pausedUntil <= this.clock.now()
    ) {
      host.active++
      return undefined
    }
    return new Promise((resolve) => {
      host.waiters.push(resolve)
      this.pump(host)
    })
  }

  private release(host: Host): void {
    host.active--
    this.pump(host)
  }

  /** Hands free slots to waiters in order, or sets one wake-up for the end of the pause. */
  private pump(host: Host): void {
    const wait = host.pausedUntil - this.clock.now()
    if (wait > 0) {
      if (!host.timer) {
        host.timer = true
        void this.clock.sleep(wait).then(() => {
          host.timer = false
          this.pump(host)
        })
      }
      return
    }
    while (host.active < this.perHost && host.waiters.length > 0) {
      host.active++
      host.waiters.shift()?.()
    }
    if (host.active === 0 && host.waiters.length === 0 && this.hosts.get(host.key) === host) {
      this.hosts.delete(host.key)
    }
  }
}

function hostOf(pds: string): string {
  try {
    return new URL(pds).host
  } catch (cause) {
    throw new RepoSourceError('bad_url', `not a PDS URL: ${pds}`, { cause })
  }
}
