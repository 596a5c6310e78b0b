import { ReplyError } from 'ioredis'
import { beforeEach, describe, expect, it } from 'vitest'
import type { Wire } from '../src/index.js'
import { frame, useWireFixture } from './helpers.js'

// An error reply belongs to its command alone: it comes back as a value (redis-errors' ReplyError, as from
// ioredis) in that command's place, the frame still resolves, and the other commands, of this frame and
// of the frames around it, are answered and applied as if it were not there. Nothing about it counts as a
// lost connection.

const f = useWireFixture()
let wire: Wire

beforeEach(() => {
  wire = f.wire(f.t.url)
})

describe('errors inside a pipeline', () => {
  it('a WRONGTYPE in the middle of 100 commands is that command reply; the other 99 are right', async () => {
    const str = `${f.t.prefix}str`
    const list = `${f.t.prefix}list`
    await f.t.redis.set(str, 'not a list')
    const replies = await wire.send(
      frame(
        ...Array.from({ length: 100 }, (_, i) =>
          i === 50 ? ['LPUSH', str, i] : ['RPUSH', list, i],
        ),
      ),
    )
    expect(replies).toHaveLength(100)
    const error = replies[50]
    expect(error).toBeInstanceOf(ReplyError)
    expect((error as Error).message).toMatch(/^WRONGTYPE/)
    expect(replies.filter((r) => r instanceof Error)).toHaveLength(1)
    expect(replies.filter((_, i) => i !== 50)).toEqual(Array.from({ length: 99 }, (_, i) => i + 1))
    // the commands after it ran too
    expect(await f.t.redis.lrange(list, 0, -1)).toEqual(
      Array.from({ length: 100 }, (_, i) => String(i)).filter((i) => i !== '50'),
    )
    expect(await f.t.redis.get(str)).toBe('not a list')
    expect(await wire.send(frame(['LLEN', list]))).toEqual([99])
    expect(f.losses).toBe(0)
  })

  it('errors first, last, several at once, inside EXEC and from scripts, each in its own place', async () => {
    const k = (name: string) => `${f.t.prefix}${name}`
    await f.t.redis.set(k('str'), 'text')
    const replies = await wire.send(
      frame(
        ['LLEN', k('str')],
        ['PING'],
        ['NOSUCHCOMMAND', 'x'],
        ['EVAL', "return redis.error_reply('MINE scripted')", 0],
        ['EVAL', "error('thrown')", 0],
        ['MULTI'],
        ['INCR', k('str')],
        ['SET', k('after'), 1],
        ['EXEC'],
        ['MULTI'],
        ['SET', k('never')],
        ['EXEC'],
        ['GET', k('after')],
        ['SADD', k('str'), 'm'],
      ),
    )
    const shape = (v: unknown): unknown =>
      v instanceof ReplyError
        ? `error ${(v as Error).message.split(' ')[0]}`
        : Buffer.isBuffer(v)
          ? v.toString()
          : Array.isArray(v)
            ? v.map(shape)
            : v
    expect(replies.map(shape)).toEqual([
      'error WRONGTYPE',
      'PONG',
      'error ERR',
      'error MINE',
      'error ERR',
      'OK',
      'QUEUED',
      'QUEUED',
      // inside EXEC's array: the failed INCR is an error value, the SET after it ran
      ['error ERR', 'OK'],
      'OK',
      'error ERR',
      'error EXECABORT',
      '1',
      'error WRONGTYPE',
    ])
    expect(String(replies[4])).toMatch(/thrown/)
    expect(await f.t.redis.exists(k('never'))).toBe(0)
    expect(f.losses).toBe(0)
  })

  it('an error in one of several frames in flight leaves the frames around it alone', async () => {
    const k = (name: string) => `${f.t.prefix}${name}`
    await f.t.redis.set(k('str'), 'text')
    const sends = Array.from({ length: 5 }, (_, i) =>
      wire.send(
        frame(['INCR', k('n')], i === 2 ? ['HSET', k('str'), 'f', 'v'] : ['INCR', k('n')], [
          'INCR',
          k('n'),
        ]),
      ),
    )
    const replies = await Promise.all(sends)
    expect(replies.map((r) => r.map((v) => (v instanceof ReplyError ? 'error' : v)))).toEqual([
      [1, 2, 3],
      [4, 5, 6],
      [7, 'error', 8],
      [9, 10, 11],
      [12, 13, 14],
    ])
    expect(f.losses).toBe(0)
  })
})
