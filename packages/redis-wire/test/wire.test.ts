import { type PrivateRedis, startRedisServer } from '@circles/testkit'
import { Redis, ReplyError } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Wire, WireError } from '../src/index.js'
import { frame } from './helpers.js'

// The writer's own connection (src/wire.ts), on a private server with a
// password: AUTH failures and killed connections must not disturb the shared Redis.
let server: PrivateRedis
let admin: Redis
const PASSWORD = 'wire-test-secret'

beforeAll(async () => {
  server = await startRedisServer()
  const open = new Redis(server.url, { maxRetriesPerRequest: 2 })
  await open.config('SET', 'requirepass', PASSWORD)
  open.disconnect()
  admin = new Redis(server.url, { password: PASSWORD, maxRetriesPerRequest: 2 })
})

afterAll(async () => {
  admin.disconnect()
  await server.stop()
})

describe('wire', () => {
  it('authenticates, selects the database, and returns one reply per command in order', async () => {
    const wire = new Wire({ port: server.port, password: PASSWORD, db: 3 })
    const bin = Buffer.from([0, 13, 10, 255, 36, 42])
    const replies = await wire.send(
      frame(
        ['SET', 'wire:a', 'x'.repeat(100_000)],
        ['SET', 'wire:bin', bin],
        ['RPUSH', 'wire:l', 1, 22, 333],
        ['LRANGE', 'wire:l', 0, -1],
        ['INCR', 'wire:a'],
        ['GET', 'wire:nothing'],
      ),
    )
    expect(replies.slice(0, 3)).toEqual([Buffer.from('OK'), Buffer.from('OK'), 3])
    expect(replies[3]).toEqual(['1', '22', '333'].map((s) => Buffer.from(s)))
    // an error reply is a value, of the class ioredis uses (the indexer tells data errors by it)
    expect(replies[4]).toBeInstanceOf(ReplyError)
    expect(replies[5]).toBeNull()
    await admin.select(3)
    expect(await admin.getBuffer('wire:bin')).toEqual(bin)
    expect(await admin.strlen('wire:a')).toBe(100_000)
    await admin.del('wire:a', 'wire:bin', 'wire:l')
    await admin.select(0)
    await wire.close()
  })

  it('a refused handshake fails the frame as a connection error, not as a reply about its data', async () => {
    const wire = new Wire({ port: server.port, password: 'wrong' })
    const sent = wire.send(frame(['SET', 'wire:never', '1']))
    await expect(sent).rejects.toBeInstanceOf(WireError)
    await expect(sent).rejects.toThrow(/handshake/)
    expect(await admin.exists('wire:never')).toBe(0)
    await wire.close()
  })

  it('a connection lost mid-frame fails that frame; the next frame reconnects', async () => {
    const wire = new Wire({ port: server.port, password: PASSWORD })
    const [id] = (await wire.send(frame(['CLIENT', 'ID']))) as [number]
    // a frame that waits in Redis, killed from outside
    const blocked = wire.send(frame(['BLPOP', 'wire:empty', 10])).catch((err: unknown) => err)
    await new Promise((r) => setTimeout(r, 50))
    await admin.client('KILL', 'ID', String(id))
    expect(await blocked).toBeInstanceOf(WireError)
    const [again] = (await wire.send(frame(['CLIENT', 'ID']))) as [number]
    expect(again).not.toBe(id)
    await wire.close()
    await expect(wire.send(frame(['PING']))).rejects.toBeInstanceOf(WireError)
  })

  it('a Redis that stops answering fails the frames in flight after commandTimeout, never an idle connection', async () => {
    let losses = 0
    const wire = new Wire({ port: server.port, password: PASSWORD, commandTimeout: 300 }, () => {
      losses++
    })
    const [id] = (await wire.send(frame(['CLIENT', 'ID']))) as [number]
    // nothing in flight: a connection quiet for longer than the timeout stays up
    await new Promise((r) => setTimeout(r, 600))
    expect(await wire.send(frame(['CLIENT', 'ID']))).toEqual([id])
    expect(losses).toBe(0)
    // a paused server keeps the connection open and answers nothing
    process.kill(server.pid, 'SIGSTOP')
    let stalled: unknown
    try {
      stalled = await wire.send(frame(['PING'])).catch((err: unknown) => err)
    } finally {
      process.kill(server.pid, 'SIGCONT')
    }
    expect(stalled).toBeInstanceOf(WireError)
    expect(String(stalled)).toMatch(/did not answer/)
    expect(losses).toBe(1)
    const [again] = (await wire.send(frame(['CLIENT', 'ID']))) as [number]
    expect(again).not.toBe(id)
    await wire.close()
  })

  it('frames sent before the connection is ready go out in the order they were sent', async () => {
    const wire = new Wire({ port: server.port, password: PASSWORD })
    const sends = Array.from({ length: 20 }, (_, i) => wire.send(frame(['RPUSH', 'wire:order', i])))
    expect(await Promise.all(sends)).toEqual(sends.map((_, i) => [i + 1]))
    expect(await admin.lrange('wire:order', 0, -1)).toEqual(sends.map((_, i) => String(i)))
    await admin.del('wire:order')
    await wire.close()
  })
})
