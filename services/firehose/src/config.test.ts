import { ConfigError } from '@circles/config'
import { describe, expect, it } from 'vitest'
import { readEnv, toConfig } from './config.js'
import { backoffDelay } from './service.js'

describe('firehose config', () => {
  it('has working defaults', () => {
    const c = toConfig(readEnv({}))
    expect(c).toMatchObject({
      relayUrl: 'wss://bsky.network',
      redisUrl: 'redis://127.0.0.1:6379',
      redisPrefix: 'circles:',
      startCursor: null,
      maxLag: 2000,
      resumeLag: 500,
      maxLen: 20000,
    })
  })

  it('reads the start cursor and strips a trailing slash from the relay', () => {
    const c = toConfig(readEnv({ FIREHOSE_CURSOR: '123', RELAY_URL: 'ws://127.0.0.1:2583/' }))
    expect(c.startCursor).toBe(123)
    expect(c.relayUrl).toBe('ws://127.0.0.1:2583')
  })

  it.each([
    [{ RELAY_URL: 'http://relay' }, 'RELAY_URL'],
    [{ FIREHOSE_CURSOR: '-1' }, 'FIREHOSE_CURSOR'],
    [{ FIREHOSE_CURSOR: 'abc' }, 'FIREHOSE_CURSOR'],
    [{ FIREHOSE_BATCH_FRAMES: '0' }, 'FIREHOSE_BATCH_FRAMES'],
    [{ FIREHOSE_RESUME_LAG: '3000' }, 'FIREHOSE_RESUME_LAG'],
    [{ FIREHOSE_MAXLEN: '3000' }, 'FIREHOSE_MAXLEN'],
    [
      { FIREHOSE_BACKOFF_MIN_MS: '5000', FIREHOSE_BACKOFF_MAX_MS: '100' },
      'FIREHOSE_BACKOFF_MAX_MS',
    ],
  ])('rejects %o naming %s', (env, name) => {
    expect(() => toConfig(readEnv(env))).toThrow(ConfigError)
    expect(() => toConfig(readEnv(env))).toThrow(name)
  })
})

describe('backoffDelay', () => {
  it('grows exponentially within [cap/2, cap] and stops at the maximum', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const cap = Math.min(30_000, 500 * 2 ** attempt)
      for (let i = 0; i < 20; i++) {
        const d = backoffDelay(attempt, 500, 30_000)
        expect(d).toBeGreaterThanOrEqual(cap / 2)
        expect(d).toBeLessThanOrEqual(cap)
      }
    }
  })
})
