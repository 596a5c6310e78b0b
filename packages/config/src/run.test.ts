import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigError } from './index.js'
import { type RunLog, type RunnableService, runService } from './run.js'

// The signal handlers are called through process.emit: a real signal would reach the test runner too.
// ops/test/start.test.ts and ops/src/supervisor.test.ts send real ones to the built services.

const SIGNALS = ['SIGINT', 'SIGTERM'] as const

describe('runService', () => {
  let lines: [string, string][]
  let before: Map<string, unknown[]>
  const log: RunLog = {
    info: (_obj, msg) => void lines.push(['info', msg]),
    error: (_obj, msg) => void lines.push(['error', msg]),
    fatal: (_obj, msg) => void lines.push(['fatal', msg]),
  }

  beforeEach(() => {
    lines = []
    before = new Map(SIGNALS.map((s) => [s, process.listeners(s)]))
  })
  afterEach(() => {
    for (const s of SIGNALS) {
      for (const l of process.listeners(s)) if (!before.get(s)?.includes(l)) process.off(s, l)
    }
    process.exitCode = undefined
  })

  function service(opts: { start?: () => Promise<void>; close?: () => Promise<void> } = {}) {
    const calls = { start: 0, close: 0 }
    const s: RunnableService = {
      start: async () => {
        calls.start++
        await opts.start?.()
      },
      close: async () => {
        calls.close++
        await opts.close?.()
      },
    }
    return { s, calls }
  }

  it('reports a configuration error with exit code 1 and starts nothing', async () => {
    await runService(log, () => {
      throw new ConfigError('PORT must be an integer')
    })
    expect(lines).toEqual([['fatal', 'invalid configuration']])
    expect(process.exitCode).toBe(1)
    for (const s of SIGNALS) expect(process.listeners(s)).toEqual(before.get(s))
  })

  it('closes on a signal, lets a repeated one through, and leaves the exit code alone', async () => {
    const { s, calls } = service()
    await runService(log, () => s)
    expect(calls).toEqual({ start: 1, close: 0 })
    process.emit('SIGTERM', 'SIGTERM')
    await new Promise((r) => setImmediate(r))
    expect(calls.close).toBe(1)
    expect(lines).toEqual([['info', 'stopping']])
    // The handler was `once`: a second SIGTERM gets Node's default handling (a stuck close can be killed).
    expect(process.listeners('SIGTERM')).toEqual(before.get('SIGTERM'))
    expect(process.exitCode).toBeUndefined()
  })

  it('closes what started when start fails, with exit code 1', async () => {
    const { s, calls } = service({ start: () => Promise.reject(new Error('no Redis')) })
    await runService(log, () => s)
    expect(calls).toEqual({ start: 1, close: 1 })
    expect(lines).toEqual([['fatal', 'failed to start']])
    expect(process.exitCode).toBe(1)
  })

  it("exits with the start error's own exitCode when it names one (a refused login: 78)", async () => {
    const refused = Object.assign(new Error('login refused'), { exitCode: 78 })
    const { s, calls } = service({ start: () => Promise.reject(refused) })
    await runService(log, () => s)
    expect(calls).toEqual({ start: 1, close: 1 })
    expect(process.exitCode).toBe(78)
  })

  it('sets exit code 1 when close fails after a signal', async () => {
    const { s } = service({ close: () => Promise.reject(new Error('stuck')) })
    await runService(log, () => s)
    process.emit('SIGINT', 'SIGINT')
    await new Promise((r) => setImmediate(r))
    expect(lines).toEqual([
      ['info', 'stopping'],
      ['error', 'close failed'],
    ])
    expect(process.exitCode).toBe(1)
  })
})
