import { Frame, Wire, WireError } from '@circles/redis-wire'
import { freePort } from '@circles/testkit'
import { ReplyError } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { pipelineValues, redisFault, unavailableBody } from './redis-faults.js'

// The sorting of Redis errors, on the errors ioredis really produces (test/redis-faults.test.ts provokes
// each of them on a real server).

const reply = (message: string): Error => new ReplyError(message) as Error

describe('redisFault', () => {
  it('sorts error replies into refused writes, unavailable, and the rest', () => {
    const cases: [string, ReturnType<typeof redisFault>][] = [
      ["OOM command not allowed when used memory > 'maxmemory'.", 'write-refused'],
      ["READONLY You can't write against a read only replica.", 'write-refused'],
      [
        'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
        'write-refused',
      ],
      [
        'MISCONF Redis is configured to save RDB snapshots, but it is currently unable to persist',
        'write-refused',
      ],
      ['NOREPLICAS Not enough good replicas to write.', 'write-refused'],
      ['LOADING Redis is loading the dataset in memory', 'unavailable'],
      ['BUSY Redis is busy running a script.', 'unavailable'],
      ['CLUSTERDOWN The cluster is down', 'unavailable'],
      ['TRYAGAIN Multiple keys request during rehashing of slot', 'unavailable'],
      ['WRONGTYPE Operation against a key holding the wrong kind of value', null],
      ['ERR unknown command', null],
    ]
    for (const [message, fault] of cases) expect(redisFault(reply(message)), message).toBe(fault)
  })

  it('counts a lost connection as unavailable, also behind a cause; other errors are not faults', () => {
    const retries = Object.assign(new Error('Reached the max retries per request limit'), {
      name: 'MaxRetriesPerRequestError',
    })
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), {
      code: 'ECONNREFUSED',
    })
    for (const err of [
      new Error('Connection is closed.'),
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      new Error('Command timed out'),
      retries,
      refused,
      new Error('index read failed', { cause: reply('LOADING Redis is loading') }),
    ]) {
      expect(redisFault(err), err.message).toBe('unavailable')
    }
    for (const err of [new Error('boom'), new TypeError('x is undefined'), 'string', null]) {
      expect(redisFault(err)).toBeNull()
    }
  })

  it('counts a redis-wire connection that cannot reach Redis as unavailable', async () => {
    const wire = new Wire({ port: await freePort(), connectTimeout: 1000 })
    const frame = new Frame()
    frame.call('PING')
    const err = await wire.send(frame).catch((e: unknown) => e)
    await wire.close()
    expect(err).toBeInstanceOf(WireError)
    expect(redisFault(err)).toBe('unavailable')
  })

  it('says what is wrong without the reply text', () => {
    expect(unavailableBody('unavailable', reply('LOADING Redis is loading')).message).toBe(
      'Redis is loading its data: try again in 5 s',
    )
    expect(unavailableBody('unavailable', reply('BUSY running a script')).message).toMatch(
      /^Redis is busy/,
    )
    expect(unavailableBody('unavailable').message).toMatch(/^Redis is unreachable/)
    expect(
      unavailableBody(
        'write-refused',
        reply("OOM command not allowed when used memory > 'maxmemory'."),
      ),
    ).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'Redis refuses writes right now (OOM): try again in 5 s',
    })
  })

  it('reads pipeline replies, throwing the first error instead of handing it on as a value', () => {
    expect(
      pipelineValues([
        [null, 1],
        [null, 'a'],
      ]),
    ).toEqual([1, 'a'])
    const loading = reply('LOADING Redis is loading')
    expect(() =>
      pipelineValues([
        [null, 1],
        [loading, undefined],
      ]),
    ).toThrow(loading)
    expect(() => pipelineValues(null)).toThrow(/closed/)
  })
})
