import { freePort } from '@circles/testkit'
import { describe, expect, it } from 'vitest'
import { type Wire, WireError } from '../src/index.js'
import { frame, settledWithin, untilTurn, useWireFixture } from './helpers.js'

// A connection lost while replies are due: every frame in flight or waiting rejects at once with a
// WireError (the caller sends it again; its commands may or may not have run), none hangs, none resolves
// with another frame's replies, `onLost` is told once before the rejections, and the next send connects
// anew with a clean parser. "At once" is checked against a bound far below the 60 s reply timeout,
// counted from the send (each outcome is watched from the start, so no rejection goes unhandled).

const PROMPT_MS = 2000

const f = useWireFixture()

async function clientId(wire: Wire): Promise<number> {
  const [id] = (await wire.send(frame(['CLIENT', 'ID']))) as [number]
  return id
}

describe('connection loss mid-pipeline', () => {
  it('CLIENT KILL with ten frames of 100 commands due rejects all of them at once; the next send reconnects', async () => {
    const wire = f.wire(f.t.url)
    const id = await clientId(wire)
    const n = `${f.t.prefix}n`
    // the first frame blocks in Redis, so the replies of all ten are still due when the kill comes
    const sends = Array.from({ length: 10 }, (_, i) =>
      settledWithin(
        wire.send(
          frame(
            ...(i === 0 ? [['BLPOP', `${f.t.prefix}empty`, 10]] : []),
            ...Array.from({ length: i === 0 ? 99 : 100 }, () => ['INCR', n]),
          ),
        ),
        PROMPT_MS,
      ),
    )
    await new Promise((r) => setTimeout(r, 50))
    await f.t.redis.client('KILL', 'ID', String(id))
    for (const o of await Promise.all(sends)) {
      expect(o).not.toBe('pending')
      expect(o).toHaveProperty('error')
      const { error } = o as { error: unknown }
      expect(error).toBeInstanceOf(WireError)
      expect(String(error)).toMatch(/connection to Redis closed/)
    }
    expect(f.losses).toBe(1)
    const again = await clientId(wire)
    expect(again).not.toBe(id)
    expect(await wire.send(frame(['PING']))).toEqual([Buffer.from('PONG')])
  })

  it('a cut in the middle of a reply keeps the frames answered, fails the rest, and the next connection parses anew', async () => {
    const big = Buffer.alloc(200_000, 'ab\r\n')
    const bigKey = `${f.t.prefix}big`
    await f.t.redis.set(bigKey, big)
    const proxy = await f.proxy({ replyBytesPerWrite: 64 })
    const wire = f.wire(proxy.url)
    const answered = wire.send(frame(['PING'], ['ECHO', 'first']))
    const cut = settledWithin(
      wire.send(frame(['GET', bigKey], ...Array.from({ length: 50 }, () => ['PING']))),
      PROMPT_MS,
    )
    const after = settledWithin(wire.send(frame(['ECHO', 'after'])), PROMPT_MS)
    // half of the big bulk handed over: the parser holds a partial reply when the link goes
    await untilTurn(() => proxy.repliedBytes > big.length / 2)
    proxy.drop()
    expect(await answered).toEqual([Buffer.from('PONG'), Buffer.from('first')])
    for (const o of await Promise.all([cut, after])) {
      expect(o).not.toBe('pending')
      expect((o as { error: unknown }).error).toBeInstanceOf(WireError)
    }
    expect(f.losses).toBe(1)
    // a parser carried over would read these replies as the rest of the cut bulk
    const [value, echo] = await wire.send(frame(['GET', bigKey], ['ECHO', 'fresh']))
    expect(Buffer.compare(value as Buffer, big)).toBe(0)
    expect(echo).toEqual(Buffer.from('fresh'))
  })

  it('frames waiting for the handshake fail when the link goes before it completes, and are never sent', async () => {
    const proxy = await f.proxy()
    proxy.stall()
    const wire = f.wire(proxy.url)
    const sends = Array.from({ length: 5 }, (_, i) =>
      settledWithin(wire.send(frame(['SET', `${f.t.prefix}waited:${i}`, 1])), PROMPT_MS),
    )
    await untilTurn(() => proxy.heldBytes > 0)
    proxy.drop()
    for (const o of await Promise.all(sends)) {
      expect(o).not.toBe('pending')
      expect((o as { error: unknown }).error).toBeInstanceOf(WireError)
    }
    expect(f.losses).toBe(1)
    proxy.resume()
    expect(await wire.send(frame(['PING']))).toEqual([Buffer.from('PONG')])
    expect(await f.t.redis.keys(`${f.t.prefix}waited:*`)).toEqual([])
  })

  it('a refused connection fails the frame at once; so does each retry until the server is back', async () => {
    const port = await freePort()
    const wire = f.wire(`redis://127.0.0.1:${port}`)
    for (let i = 1; i <= 2; i++) {
      const o = await settledWithin(wire.send(frame(['PING'])), PROMPT_MS)
      expect((o as { error: unknown }).error).toBeInstanceOf(WireError)
      expect(String((o as { error: unknown }).error)).toMatch(/ECONNREFUSED/)
      expect(f.losses).toBe(i)
    }
  })

  it('close() waits for the frames in flight, refuses frames sent after it, and never hangs', async () => {
    // replies a byte per read: the in-flight frame's reply is complete before the late frame's begins
    const proxy = await f.proxy({ replyBytesPerWrite: 1 })
    const wire = f.wire(proxy.url)
    await wire.send(frame(['PING']))
    const inFlight = wire.send(frame(['ECHO', 'in flight']))
    const closing = wire.close()
    const late = settledWithin(wire.send(frame(['ECHO', 'late'])), PROMPT_MS)
    expect(await inFlight).toEqual([Buffer.from('in flight')])
    expect(await settledWithin(closing, PROMPT_MS)).toEqual({ value: undefined })
    const o = await late
    expect(o).not.toBe('pending')
    expect((o as { error: unknown }).error).toBeInstanceOf(WireError)
    expect(await settledWithin(wire.close(), PROMPT_MS)).toEqual({ value: undefined })
  })

  it('close() during the handshake waits for the frames behind it, not only for the handshake', async () => {
    const proxy = await f.proxy({ replyBytesPerWrite: 1 })
    proxy.stall()
    const wire = f.wire(proxy.url)
    const first = wire.send(frame(['ECHO', 'first']))
    // connected, the handshake sent (and held): the frame waits behind it
    await untilTurn(() => proxy.heldBytes > 0)
    const closing = wire.close()
    proxy.resume()
    expect(await settledWithin(first, PROMPT_MS)).toEqual({ value: [Buffer.from('first')] })
    expect(await settledWithin(closing, PROMPT_MS)).toEqual({ value: undefined })
  })

  it('close() after a loss with frames due returns at once', async () => {
    const proxy = await f.proxy()
    const wire = f.wire(proxy.url)
    await wire.send(frame(['PING']))
    proxy.stall()
    const due = wire.send(frame(['PING'])).catch((err: unknown) => err)
    await untilTurn(() => proxy.heldBytes > 0)
    const closed = wire.close()
    proxy.drop()
    expect(await settledWithin(closed, PROMPT_MS)).toEqual({ value: undefined })
    expect(await due).toBeInstanceOf(WireError)
  })

  it('an empty frame resolves with no replies and takes none of the next frame', async () => {
    const wire = f.wire(f.t.url)
    const empty = wire.send(frame())
    const next = wire.send(frame(['ECHO', 'mine']))
    expect(await settledWithin(empty, PROMPT_MS)).toEqual({ value: [] })
    expect(await next).toEqual([Buffer.from('mine')])
  })
})
