import { ReplyError } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { frame, useWireFixture } from './helpers.js'

// Replies that reach the wire split at every byte boundary (a proxy hands them over one byte, or a few,
// per read): each frame must get exactly its own replies, byte for byte, whatever the split. The same
// frames are sent straight to Redis too, and both answers must agree.

const f = useWireFixture()

/** Values that look like RESP, hold its delimiters, or are empty. */
const TRICKY = [
  'a\r\nb',
  '\r\n',
  '$3\r\nfoo\r\n',
  '*2\r\n:1\r\n-ERR no\r\n',
  '',
  'é€😀',
  '\r',
  '\n',
]
const BINARY = Buffer.from([0, 13, 10, 13, 13, 10, 10, 255, 36, 42, 45, 43, 58, 13])

/** A value of `n` bytes with `\r\n` and RESP type bytes throughout, different for each `seed`. */
function bigValue(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n)
  const alphabet = Buffer.from(`\r\n$*:-+0123456789abcdef${seed}`)
  for (let i = 0; i < n; i++)
    out[i] = alphabet[(i * 7 + seed + (i >> 5)) % alphabet.length] as number
  return out
}

/** Buffers as hex, for a fast deep compare with a readable diff. */
function hex(v: unknown): unknown {
  return Buffer.isBuffer(v) ? v.toString('hex') : Array.isArray(v) ? v.map(hex) : v
}

describe('replies split across TCP reads', () => {
  it('every reply type, split at every byte boundary, comes back exactly', async () => {
    const k = (name: string) => `${f.t.prefix}${name}`
    const writes = frame(
      ...TRICKY.map((v, i) => ['SET', k(`s${i}`), v]),
      ['SET', k('bin'), BINARY],
      ['RPUSH', k('list'), ...TRICKY],
      ['SET', k('n'), 10],
    )
    const reads = frame(
      ...TRICKY.map((_, i) => ['GET', k(`s${i}`)]),
      ['GET', k('bin')],
      ['LRANGE', k('list'), 0, -1],
      ['GET', k('missing')],
      ['INCRBY', k('n'), -25],
      ['INCR', k('s0')],
      ['EXISTS', k('missing')],
      ['LRANGE', k('missing'), 0, -1],
      [
        'EVAL',
        "return {1, {ARGV[1], -2, {}}, 'x', redis.error_reply('MY err\tinside')}",
        0,
        TRICKY[0] as string,
      ],
      ['PING'],
      ['ECHO', ''],
    )
    const expected = [
      ...TRICKY.map((v) => Buffer.from(v)),
      BINARY,
      TRICKY.map((v) => Buffer.from(v)),
      null,
      -15,
      'error',
      0,
      [],
      [1, [Buffer.from(TRICKY[0] as string), -2, []], Buffer.from('x'), 'error'],
      Buffer.from('PONG'),
      Buffer.alloc(0),
    ]
    // the same reply with its errors as their messages, for one toEqual
    const shape = (v: unknown): unknown =>
      v instanceof ReplyError
        ? `error: ${(v as Error).message}`
        : Array.isArray(v)
          ? v.map(shape)
          : v

    const direct = f.wire(f.t.url)
    await direct.send(writes)
    const straight = await direct.send(reads)
    await direct.send(frame(['SET', k('n'), 10]))

    const proxy = await f.proxy({ replyBytesPerWrite: 1 })
    const split = f.wire(proxy.url)
    // two frames in flight at once: the boundary between their replies is split like any other
    const [again, replies] = await Promise.all([
      split.send(frame(['SET', k('n'), 10], ['GET', k('n')])),
      split.send(reads),
    ])
    expect(again).toEqual([Buffer.from('OK'), Buffer.from('10')])
    expect(shape(replies)).toEqual(shape(straight))
    const errors = replies.map((r, i) => (r instanceof ReplyError ? i : -1)).filter((i) => i >= 0)
    expect(errors).toEqual([TRICKY.length + 4])
    expect(String(replies[TRICKY.length + 4])).toMatch(/not an integer/)
    const script = replies[TRICKY.length + 7] as unknown[]
    expect(script[3]).toBeInstanceOf(ReplyError)
    expect((script[3] as Error).message).toBe('MY err\tinside')
    expect(
      replies.map((r, i) =>
        r instanceof ReplyError
          ? 'error'
          : i === TRICKY.length + 7
            ? [...script.slice(0, 3), 'error']
            : r,
      ),
    ).toEqual(expected)
    // the replies went through the proxy (one byte per read: testkit's stall-proxy test)
    expect(proxy.repliedBytes).toBeGreaterThan(200)
  })

  // A turn of the event loop per read (~50 us): the smaller the reads, the smaller the values.
  it.each([
    [1, 10_000, 200],
    [13, 60_000, 2000],
    [4097, 1_000_000, 2000],
  ])(
    'big replies, bulks inside arrays and many small ones, %i bytes per read, come back exactly',
    async (bytesPerRead, size, count) => {
      const k = (name: string) => `${f.t.prefix}${name}`
      const big1 = bigValue(size, 1)
      const big2 = bigValue(size + 17, 2)
      const items = Array.from({ length: count }, (_, i) => bigValue(i % 97, i))
      await f.t.redis.set(k('big1'), big1)
      await f.t.redis.set(k('big2'), big2)
      await f.t.redis.rpush(k('items'), ...items)

      const proxy = await f.proxy({ replyBytesPerWrite: bytesPerRead })
      const wire = f.wire(proxy.url)
      const sends = [
        wire.send(frame(['GET', k('big1')], ['LRANGE', k('items'), 0, -1], ['GET', k('big2')])),
        wire.send(frame(['MGET', k('big2'), k('missing'), k('big1')], ['STRLEN', k('big1')])),
        wire.send(frame(...items.slice(0, 150).map((_, i) => ['LINDEX', k('items'), i]))),
      ]
      const [first, second, third] = (await Promise.all(sends)).map(hex)
      // all held until the end: a later reply must not have overwritten an earlier one's bytes
      expect(first).toEqual(hex([big1, items, big2]))
      expect(second).toEqual(hex([[big2, null, big1], size]))
      expect(third).toEqual(hex(items.slice(0, 150)))
      expect(proxy.repliedBytes).toBeGreaterThan(4 * size)
    },
  )
})
