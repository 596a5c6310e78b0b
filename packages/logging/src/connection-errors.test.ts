import { EventEmitter } from 'node:events'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { logConnectionErrors } from './index.js'

describe('logConnectionErrors', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('logs one warning per 10 s however many reconnect attempts fail', () => {
    vi.useFakeTimers({ now: 0 })
    const lines: { level: number; msg: string; err: { message: string } }[] = []
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)))
        done()
      },
    })
    const client = new EventEmitter()
    logConnectionErrors(client, pino(sink), 'Redis connection (test)')
    for (let i = 0; i < 5; i++) client.emit('error', new Error(`ECONNREFUSED ${i}`))
    vi.setSystemTime(10_001)
    client.emit('error', new Error('ECONNREFUSED later'))
    expect(lines.map((l) => [l.level, l.msg, l.err.message])).toEqual([
      [40, 'Redis connection (test) error (ioredis keeps reconnecting)', 'ECONNREFUSED 0'],
      [40, 'Redis connection (test) error (ioredis keeps reconnecting)', 'ECONNREFUSED later'],
    ])
  })
})
