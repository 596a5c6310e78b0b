import { describe, expect, it } from 'vitest'
import { RateLimitedError } from './errors.js'
import { type LimiterClock, PdsLimiter } from './pds-limiter.js'

/** A clock that moves only when told; sleepers wake when it passes their time. */
function manualClock(start = 1_000_000) {
  let now = start
  const sleepers: { at: number; wake: () => void }[] = []
  const clock: LimiterClock & { advance(ms: number): Promise<void> } = {
    now: () => now,
    sleep: (ms) => new Promise((wake) => sleepers.push({ at: now + ms, wake })),
    async advance(ms) {
      now += ms
      for (const s of sleepers.splice(0)) {
        if (s.at <= now) s.wake()
        else sleepers.push(s)
      }
      await settle()
    },
  }
  return clock
}

/** Lets every pending promise callback run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve()
}

/** A task that runs until released, recording when it started. */
function gate() {
  const started: number[] = []
  const open: (() => void)[] = []
  const task = (clock: LimiterClock) => async () => {
    started.push(clock.now())
    await new Promise<void>((resolve) => open.push(resolve))
    return 'done'
  }
  return {
    started,
    task,
    releaseAll: () => {
      for (const r of open.splice(0)) r()
    },
  }
}

const PDS = 'https://pds.example.com'

describe('PdsLimiter', () => {
  it('runs at most perHost tasks per host at once, other hosts apart', async () => {
    const clock = manualClock()
    const limiter = new PdsLimiter({ perHost: 2, clock })
    const a = gate()
    const b = gate()
    const runs = [1, 2, 3, 4, 5].map(() => limiter.run(PDS, a.task(clock)))
    const other = limiter.run('https://other.example.com:8443', b.task(clock))
    await settle()
    expect(a.started.length).toBe(2)
    expect(b.started.length).toBe(1)
    a.releaseAll()
    await settle()
    expect(a.started.length).toBe(4)
    a.releaseAll()
    await settle()
    a.releaseAll()
    b.releaseAll()
    expect(await Promise.all([...runs, other])).toEqual(Array(6).fill('done'))
    expect(limiter.size).toBe(0)
  })

  it('a 429 pauses the host for every task until retryAt, then the task runs again', async () => {
    const clock = manualClock()
    const limiter = new PdsLimiter({ perHost: 4, clock })
    const attempts: number[] = []
    const limited = limiter.run(PDS, async () => {
      attempts.push(clock.now())
      if (attempts.length === 1) throw new RateLimitedError('429', clock.now() + 30_000)
      return 'retried'
    })
    await settle()
    expect(limiter.pausedUntil(PDS)).toBe(clock.now() + 30_000)
    const later = gate()
    const waiting = limiter.run(PDS, later.task(clock))
    await clock.advance(29_999)
    expect(attempts.length).toBe(1)
    expect(later.started).toEqual([])
    await clock.advance(1)
    expect(await limited).toBe('retried')
    expect(attempts).toEqual([1_000_000, 1_030_000])
    expect(later.started).toEqual([1_030_000])
    later.releaseAll()
    await waiting
  })

  it('gives up after maxRetries, with the last 429', async () => {
    const clock = manualClock()
    const limiter = new PdsLimiter({ maxRetries: 2, defaultPauseMs: 1000, clock })
    let runs = 0
    const result = limiter
      .run(PDS, async () => {
        runs++
        throw new RateLimitedError('429', undefined)
      })
      .catch((e: unknown) => e)
    for (let i = 0; i < 3; i++) await clock.advance(1000)
    expect(await result).toBeInstanceOf(RateLimitedError)
    expect(runs).toBe(3)
  })

  it('does not wait out a pause longer than maxPauseMs: the caller gets the 429, the host stays paused', async () => {
    const clock = manualClock()
    const limiter = new PdsLimiter({ maxPauseMs: 60_000, clock })
    const until = clock.now() + 3_600_000
    const err = await limiter
      .run(PDS, async () => {
        throw new RateLimitedError('429', until)
      })
      .catch((e: unknown) => e)
    expect((err as RateLimitedError).retryAt).toBe(until)
    expect(limiter.pausedUntil(PDS)).toBe(until)
  })

  it('a success with ratelimit-remaining 0 pauses the host until ratelimit-reset', async () => {
    const clock = manualClock()
    const limiter = new PdsLimiter({ clock })
    await limiter.run(PDS, async (observe) => {
      observe({ 'ratelimit-remaining': '0', 'ratelimit-reset': '20' })
    })
    expect(limiter.pausedUntil(PDS)).toBe(clock.now() + 20_000)
    const next = gate()
    const run = limiter.run(PDS, next.task(clock))
    await clock.advance(19_000)
    expect(next.started).toEqual([])
    await clock.advance(1000)
    expect(next.started).toEqual([clock.now()])
    next.releaseAll()
    await run
    // Remaining requests, or no reset named: no pause.
    await limiter.run(PDS, async (observe) =>
      observe({ 'ratelimit-remaining': '3', 'ratelimit-reset': '20' }),
    )
    await limiter.run(PDS, async (observe) => observe({ 'ratelimit-remaining': '0' }))
    expect(limiter.pausedUntil(PDS)).toBe(0)
    expect(limiter.size).toBe(0)
  })

  it('passes other errors through at once, and frees the slot', async () => {
    const limiter = new PdsLimiter({ perHost: 1, clock: manualClock() })
    await expect(
      limiter.run(PDS, async () => {
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(await limiter.run(PDS, async () => 'next')).toBe('next')
  })

  it('refuses what is not a URL', async () => {
    const limiter = new PdsLimiter()
    await expect(limiter.run('not a url', async () => 1)).rejects.toMatchObject({
      reason: 'bad_url',
    })
  })
})
