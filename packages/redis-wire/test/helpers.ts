import {
  createTestRedis,
  type StallProxy,
  type StallProxyOptions,
  startStallProxy,
  type TestRedis,
} from '@circles/testkit'
import { afterEach, beforeEach } from 'vitest'
import { Frame, Wire, type WireOptions } from '../src/index.js'

/** A frame of whole commands. */
export function frame(...commands: (string | number | Buffer)[][]): Frame {
  const f = new Frame(16)
  for (const c of commands) f.call(...c)
  return f
}

/** Wire options for a `redis://host:port` URL (the shared test Redis, or a proxy in front of it). */
function wireOptions(url: string): WireOptions {
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

/** What one test works with: a private key prefix on the real Redis, and the wires and proxies it opens. */
export interface WireFixture {
  readonly t: TestRedis
  /** Connection losses the wires of this test reported (their `onLost`). */
  readonly losses: number
  /** A wire to `url` (the test Redis, or a proxy in front of it), closed after the test. */
  wire(url: string): Wire
  /** A stall proxy in front of the test Redis, closed after the test. */
  proxy(opts?: StallProxyOptions): Promise<StallProxy>
}

/** Registers the hooks of a fresh `WireFixture` per test; everything it opened is closed after the test. */
export function useWireFixture(): WireFixture {
  let t: TestRedis | undefined
  let losses = 0
  let wires: Wire[] = []
  let proxies: StallProxy[] = []
  beforeEach(async () => {
    t = await createTestRedis('redis-wire')
    losses = 0
  })
  afterEach(async () => {
    await Promise.all(wires.map((w) => w.close()))
    await Promise.all(proxies.map((p) => p.close()))
    wires = []
    proxies = []
    await t?.cleanup()
  })
  return {
    get t() {
      if (!t) throw new Error('the fixture is ready inside a test only')
      return t
    },
    get losses() {
      return losses
    },
    wire(url) {
      const wire = new Wire(wireOptions(url), () => {
        losses++
      })
      wires.push(wire)
      return wire
    },
    async proxy(opts) {
      const proxy = await startStallProxy(this.t.url, opts)
      proxies.push(proxy)
      return proxy
    },
  }
}
