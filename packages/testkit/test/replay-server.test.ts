import { decodeFirst } from '@atcute/cbor'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { CorpusFrame } from '../src/corpus.js'
import { type ReplayServer, SUBSCRIBE_REPOS_PATH, startReplayServer } from '../src/replay-server.js'
import { settle } from '../src/settle.js'

// Frames need not be valid CBOR for the server: it only looks at the seq stored beside them.
function frames(n: number, size = 64): CorpusFrame[] {
  return Array.from({ length: n }, (_, i) => {
    const data = new Uint8Array(size)
    new DataView(data.buffer).setUint32(0, i + 1)
    return { seq: i + 1, data }
  })
}

function idOf(data: Buffer): number {
  return data.readUInt32BE(0)
}

let server: ReplayServer | undefined
afterEach(async () => {
  await server?.close()
  server = undefined
})

interface Client {
  ws: WebSocket
  received: number[]
  closed: Promise<{ code: number; data: Buffer[] }>
}

function connect(url: string, cursor?: number): Client {
  const q = cursor === undefined ? '' : `?cursor=${cursor}`
  const ws = new WebSocket(`${url}${SUBSCRIBE_REPOS_PATH}${q}`)
  const received: number[] = []
  const raw: Buffer[] = []
  ws.on('message', (d: Buffer) => {
    received.push(idOf(d))
    raw.push(d)
  })
  const closed = new Promise<{ code: number; data: Buffer[] }>((resolve) => {
    ws.on('close', (code) => resolve({ code, data: raw }))
    ws.on('error', () => undefined)
  })
  return { ws, received, closed }
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('replay server', () => {
  it('sends every frame in order, and only seq > cursor when given one', async () => {
    server = await startReplayServer(frames(3000), { closeWhenDone: true })
    const all = connect(server.url)
    expect((await all.closed).code).toBe(1000)
    expect(all.received).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1))
    const tail = connect(server.url, 2990)
    await tail.closed
    expect(tail.received).toEqual([2991, 2992, 2993, 2994, 2995, 2996, 2997, 2998, 2999, 3000])
    expect(server.cursors).toEqual([undefined, 2990])
  })

  it('holds frames past releasedThrough, on every connection, until release() lets them through', async () => {
    server = await startReplayServer(frames(500), { releasedThrough: 200, closeWhenDone: true })
    const first = connect(server.url)
    const second = connect(server.url, 150)
    await until(() => first.received.length === 200 && second.received.length === 50)
    // held, not closed: nothing more arrives while the sockets stay open
    await new Promise((r) => setTimeout(r, 100))
    expect(first.received.length).toBe(200)
    expect(second.received.length).toBe(50)
    expect(first.ws.readyState).toBe(WebSocket.OPEN)
    server.release(300)
    await until(() => first.received.length === 300 && second.received.length === 150)
    expect(server.releasedThrough).toBe(300)
    server.release()
    expect((await first.closed).code).toBe(1000)
    expect((await second.closed).code).toBe(1000)
    expect(first.received).toEqual(Array.from({ length: 500 }, (_, i) => i + 1))
    expect(second.received).toEqual(Array.from({ length: 350 }, (_, i) => i + 151))
  })

  it('answers a cursor in the future with a FutureCursor error frame and close 1008', async () => {
    server = await startReplayServer(frames(10))
    const c = connect(server.url, 11)
    const { code, data } = await c.closed
    expect(code).toBe(1008)
    const [header, rest] = decodeFirst(new Uint8Array(data[0] as Buffer))
    expect(header).toEqual({ op: -1 })
    expect(decodeFirst(rest)[0]).toMatchObject({ error: 'FutureCursor' })
  })

  it('stops sending while the client does not read, and resumes when it does', async () => {
    const total = 4000
    const s = await startReplayServer(frames(total, 16 * 1024), { maxBufferedBytes: 256 * 1024 })
    server = s
    const c = connect(s.url)
    await new Promise((r) => c.ws.once('open', r))
    // Stop reading from the TCP socket: the kernel buffers fill, then the server must wait.
    const socket = (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
    socket.pause()
    // Stalled, not buffering without bound: the count stops moving (and well short of the end).
    const sentWhilePaused = await settle('frames sent', () => s.framesSent, { quietMs: 300 })
    expect(sentWhilePaused).toBeLessThan(total / 2) // 64 MB of frames: far more than the buffers hold
    socket.resume()
    await until(() => c.received.length === total)
    expect(c.received[total - 1]).toBe(total)
    c.ws.close()
  })

  it('drops connections on demand and after N frames, and a client resumes from its cursor', async () => {
    server = await startReplayServer(frames(500), { dropAfterFrames: 200 })
    const first = connect(server.url)
    const closed = await first.closed
    expect(closed.code).toBe(1006) // abnormal: terminated, no close frame
    const last = first.received[first.received.length - 1] as number
    expect(last).toBeLessThanOrEqual(200)
    const second = connect(server.url, last)
    await second.closed
    const third = connect(server.url, second.received[second.received.length - 1])
    await until(() => (third.received[third.received.length - 1] ?? 0) === 500)
    const seen = [...first.received, ...second.received, ...third.received]
    expect(seen).toEqual(Array.from({ length: 500 }, (_, i) => i + 1))

    server.dropConnections()
    expect((await third.closed).code).toBe(1006)
    expect(server.connections).toBe(3)
  })
})
