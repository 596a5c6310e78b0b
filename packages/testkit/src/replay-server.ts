import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { encode } from '@atcute/cbor'
import type { CorpusFrame } from './corpus.js'

export const SUBSCRIBE_REPOS_PATH = '/xrpc/com.atproto.sync.subscribeRepos'

export interface ReplayServerOptions {
  /** @default '127.0.0.1' */
  host?: string
  /** @default 0 (a free port) */
  port?: number
  /**
   * Stop queueing frames once this many bytes wait in the socket's buffer, and resume when they
   * have been written out. This is what makes the server send "as fast as the client reads".
   * @default 1048576
   */
  maxBufferedBytes?: number
  /** Drop (terminate) each connection after sending this many frames on it. For reconnect tests. */
  dropAfterFrames?: number
  /** Close the connection normally (1000) once every frame was sent. @default false (stay open, like an idle relay) */
  closeWhenDone?: boolean
  /**
   * Send only the frames with seq up to this one, then wait (the socket stays open, like a quiet relay)
   * until `release()` lets more through. For tests that act between two frames.
   * @default Infinity (every frame, no waiting)
   */
  releasedThrough?: number
}

export interface ReplayServer {
  /** `ws://host:port`: what a client takes as its relay URL. */
  url: string
  port: number
  /** Frames sent so far, over all connections. */
  readonly framesSent: number
  /** Connections accepted so far. */
  readonly connections: number
  /** Connections open right now. */
  readonly openConnections: number
  /** The cursor each connection asked for, in order (`undefined` when none was given). */
  readonly cursors: readonly (number | undefined)[]
  /** The seq up to which frames may be sent (see `releasedThrough`). */
  readonly releasedThrough: number
  /** Lets every connection send the frames with seq up to `seq` (every frame when omitted). */
  release(seq?: number): void
  /** Terminates every open connection at once, as a crashed relay would. */
  dropConnections(): void
  /** Resolves when every connection opened so far has sent all of its frames. */
  close(): Promise<void>
}

/**
 * Serves recorded frames on `/xrpc/com.atproto.sync.subscribeRepos` like a relay that is catching a
 * client up: `?cursor=N` replays the frames with seq > N (no cursor: from the first frame); a cursor
 * past the last seq gets a `FutureCursor` error frame and close 1008, as a real PDS does.
 */
export async function startReplayServer(
  frames: readonly CorpusFrame[],
  opts: ReplayServerOptions = {},
): Promise<ReplayServer> {
  const maxBuffered = opts.maxBufferedBytes ?? 1 << 20
  const lastSeq = frames.reduce((m, f) => Math.max(m, f.seq), 0)
  const http = createServer((_req, res) => {
    res.writeHead(404).end()
  })
  const sockets = new Set<Socket>()
  const cursors: (number | undefined)[] = []
  let framesSent = 0
  let connections = 0
  let releasedThrough = opts.releasedThrough ?? Number.POSITIVE_INFINITY
  /** Connections waiting for `release()`. */
  const held = new Set<() => void>()

  http.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    const key = req.headers['sec-websocket-key']
    if (pathOf(req) !== SUBSCRIBE_REPOS_PATH || typeof key !== 'string') {
      socket.destroy()
      return
    }
    const accept = createHash('sha1').update(`${key}${WS_GUID}`).digest('base64')
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    )
    socket.setNoDelay(true)
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => sockets.delete(socket))
    watchClientFrames(socket)
    const cursor = cursorOf(req)
    cursors.push(cursor)
    void serve(socket, cursor)
  })

  async function serve(socket: Socket, cursor: number | undefined): Promise<void> {
    if (cursor !== undefined && cursor > lastSeq) {
      const frame = errorFrame('FutureCursor', 'Cursor in the future.')
      socket.write(wsHeader(OP_BINARY, frame.length))
      socket.write(frame)
      closeSocket(socket, 1008, 'FutureCursor')
      return
    }
    let i = cursor === undefined ? 0 : firstAfter(frames, cursor)
    let sentHere = 0
    while (i < frames.length && !socket.destroyed) {
      if ((frames[i] as CorpusFrame).seq > releasedThrough) {
        await releasedOrClosed(socket)
        continue
      }
      // Write a batch under cork (one writev), then wait while the socket's buffer is over the
      // bound: it drains only as fast as the client reads.
      socket.cork()
      let batchBytes = 0
      while (i < frames.length && batchBytes < BATCH_BYTES) {
        if (opts.dropAfterFrames !== undefined && sentHere >= opts.dropAfterFrames) break
        if ((frames[i] as CorpusFrame).seq > releasedThrough) break
        const frame = frames[i++] as CorpusFrame
        socket.write(wsHeader(OP_BINARY, frame.data.byteLength))
        socket.write(frame.data)
        batchBytes += frame.data.byteLength
        sentHere++
        framesSent++
      }
      socket.uncork()
      if (opts.dropAfterFrames !== undefined && sentHere >= opts.dropAfterFrames) {
        // Let what was written reach the client, then cut the connection without a close frame.
        if (socket.writableLength > 0) await drained(socket)
        socket.destroy()
        return
      }
      if (socket.writableLength > maxBuffered) await drained(socket)
      // A fast client never lets the buffer fill: yield anyway so timers and close() still run.
      else await new Promise((resolve) => setImmediate(resolve))
    }
    if (opts.closeWhenDone && !socket.destroyed) closeSocket(socket, 1000, '')
  }

  function releasedOrClosed(socket: Socket): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        held.delete(done)
        socket.off('close', done)
        resolve()
      }
      held.add(done)
      socket.on('close', done)
    })
  }

  http.listen(opts.port ?? 0, opts.host ?? '127.0.0.1')
  await once(http, 'listening')
  const port = (http.address() as AddressInfo).port
  return {
    url: `ws://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    get framesSent() {
      return framesSent
    },
    get connections() {
      return connections
    },
    get openConnections() {
      return sockets.size
    },
    cursors,
    get releasedThrough() {
      return releasedThrough
    },
    release(seq = Number.POSITIVE_INFINITY) {
      releasedThrough = Math.max(releasedThrough, seq)
      for (const wake of [...held]) wake()
    },
    dropConnections() {
      for (const socket of sockets) socket.destroy()
      sockets.clear()
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      sockets.clear()
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
const OP_BINARY = 0x2
const OP_CLOSE = 0x8
const OP_PING = 0x9
const OP_PONG = 0xa
const BATCH_BYTES = 64 * 1024

/** A server-to-client (unmasked, final) websocket frame header. */
function wsHeader(opcode: number, length: number): Buffer {
  if (length < 126) return Buffer.from([0x80 | opcode, length])
  if (length < 65536) {
    const h = Buffer.allocUnsafe(4)
    h[0] = 0x80 | opcode
    h[1] = 126
    h.writeUInt16BE(length, 2)
    return h
  }
  const h = Buffer.allocUnsafe(10)
  h[0] = 0x80 | opcode
  h[1] = 127
  h.writeBigUInt64BE(BigInt(length), 2)
  return h
}

function closeSocket(socket: Socket, code: number, reason: string): void {
  const payload = Buffer.concat([Buffer.from([code >> 8, code & 255]), Buffer.from(reason)])
  socket.write(wsHeader(OP_CLOSE, payload.length))
  socket.end(payload)
}

function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done)
      socket.off('close', done)
      resolve()
    }
    socket.on('drain', done)
    socket.on('close', done)
  })
}

/** Answers the client's pings and close frames; everything else it sends is ignored. */
function watchClientFrames(socket: Socket): void {
  let buf: Buffer = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
    for (;;) {
      if (buf.length < 2) return
      const opcode = (buf[0] as number) & 0x0f
      const masked = ((buf[1] as number) & 0x80) !== 0
      let len = (buf[1] as number) & 0x7f
      let pos = 2
      if (len === 126) {
        if (buf.length < 4) return
        len = buf.readUInt16BE(2)
        pos = 4
      } else if (len === 127) {
        if (buf.length < 10) return
        len = Number(buf.readBigUInt64BE(2))
        pos = 10
      }
      const maskAt = pos
      if (masked) pos += 4
      if (buf.length < pos + len) return
      const payload = Buffer.from(buf.subarray(pos, pos + len))
      if (masked)
        for (let k = 0; k < len; k++)
          payload[k] = (payload[k] as number) ^ (buf[maskAt + (k & 3)] as number)
      buf = buf.subarray(pos + len)
      if (opcode === OP_PING && !socket.destroyed) {
        socket.write(wsHeader(OP_PONG, payload.length))
        socket.write(payload)
      } else if (opcode === OP_CLOSE) {
        if (!socket.destroyed && socket.writable) {
          socket.write(wsHeader(OP_CLOSE, Math.min(payload.length, 2)))
          socket.end(payload.subarray(0, 2))
        }
        return
      }
    }
  })
}

/** Index of the first frame with seq > cursor (frames are in seq order). */
function firstAfter(frames: readonly CorpusFrame[], cursor: number): number {
  let lo = 0
  let hi = frames.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((frames[mid] as CorpusFrame).seq <= cursor) lo = mid + 1
    else hi = mid
  }
  return lo
}

function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://x').pathname
}

function cursorOf(req: IncomingMessage): number | undefined {
  const raw = new URL(req.url ?? '/', 'http://x').searchParams.get('cursor')
  if (raw === null || raw === '') return undefined
  const n = Number(raw)
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

/** An XRPC error frame: header `{op: -1}`, body `{error, message}`. */
export function errorFrame(error: string, message: string): Uint8Array {
  const header = encode({ op: -1 })
  const body = encode({ error, message })
  const out = new Uint8Array(header.length + body.length)
  out.set(header, 0)
  out.set(body, header.length)
  return out
}
