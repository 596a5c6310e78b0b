import { once } from 'node:events'
import { connect } from 'node:net'
import { Redis } from 'ioredis'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTestRedis, type TestRedis } from '../src/redis.js'
import { startStallProxy } from '../src/stall-proxy.js'

describe('startStallProxy', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('stall-proxy')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  it('holds what a client sends from a stall on, then delivers it in order after others wrote', async () => {
    const key = `${t.prefix}k`
    const proxy = await startStallProxy(t.url, { stallWhen: (b) => b.includes('stall-me') })
    const slow = new Redis(proxy.url)
    try {
      expect(await slow.set(key, 'first')).toBe('OK')
      expect(proxy.stalled).toBe(false)
      // Matched: this SET and the APPEND after it are held; the direct client writes meanwhile.
      const held = slow.set(key, 'stall-me')
      const after = slow.append(key, '+late')
      await new Promise((r) => setTimeout(r, 100))
      expect(proxy.stalled).toBe(true)
      expect(proxy.heldBytes).toBeGreaterThan(0)
      expect(await t.redis.get(key)).toBe('first')
      await t.redis.set(key, 'direct')
      proxy.resume()
      expect(await held).toBe('OK')
      expect(await after).toBe('stall-me+late'.length)
      expect(await t.redis.get(key)).toBe('stall-me+late')
      // By hand, too.
      proxy.stall()
      const manual = slow.get(key)
      await new Promise((r) => setTimeout(r, 50))
      await t.redis.set(key, 'changed')
      proxy.resume()
      expect(await manual).toBe('changed')
    } finally {
      slow.disconnect()
      await proxy.close()
      await proxy.close() // idempotent
    }
  })

  it('hands the replies over a byte at a time when asked, and drops every connection on drop()', async () => {
    const proxy = await startStallProxy(t.url, { replyBytesPerWrite: 1 })
    const socket = connect(proxy.port, '127.0.0.1')
    try {
      await once(socket, 'connect')
      const chunks: Buffer[] = []
      socket.on('data', (chunk: Buffer) => chunks.push(chunk))
      const value = 'a\r\nb'.repeat(20)
      const reply = `$${value.length}\r\n${value}\r\n`
      socket.write(`*2\r\n$4\r\nECHO\r\n$${value.length}\r\n${value}\r\n`)
      while (Buffer.concat(chunks).length < reply.length)
        await new Promise((r) => setTimeout(r, 10))
      // one read per byte: a client in this process sees the reply split at every boundary
      expect(Buffer.concat(chunks).toString()).toBe(reply)
      expect(chunks.map((c) => c.length)).toEqual(Array.from(reply, () => 1))
      expect(proxy.repliedBytes).toBe(reply.length)
      const closed = once(socket, 'close')
      proxy.drop()
      await closed
      // still listening
      const again = new Redis(proxy.url)
      expect(await again.ping()).toBe('PONG')
      again.disconnect()
    } finally {
      socket.destroy()
      await proxy.close()
    }
  })
})
