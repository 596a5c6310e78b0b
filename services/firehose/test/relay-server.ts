import type { AddressInfo } from 'node:net'
import { type WebSocket, WebSocketServer } from 'ws'
import { errorFrame } from './frames.js'

// A loopback relay for tests: serves recorded frames from `?cursor=` on (seq > cursor), respects websocket
// backpressure, and misbehaves on demand (drops the socket, goes silent, answers FutureCursor).

export interface ServedFrame {
  seq: number
  bytes: Uint8Array
}

export interface Connection {
  /** The cursor the client asked for (null: live). */
  cursor: number | null
  /** Frames sent on this connection. */
  sent: number
  closed: boolean
}

export interface RelayServerOptions {
  /** Per connection (by index): close the socket after sending this many frames. */
  dropAfter?: (number | undefined)[]
  /** Per connection (by index): stop sending after this many frames but keep the socket open. */
  stallAfter?: (number | undefined)[]
  /** Per connection (by index): replay from the first frame whatever the cursor (a confused relay). */
  ignoreCursor?: (boolean | undefined)[]
  /** Frames per second per connection (0: as fast as the client reads). @default 0 */
  rate?: number
}

export interface RelayServer {
  url: string
  connections: Connection[]
  /** Adds frames; connections that have sent everything go on with them. */
  append(frames: ServedFrame[]): void
  close(): Promise<void>
}

export async function startRelayServer(
  frames: ServedFrame[],
  opts: RelayServerOptions = {},
): Promise<RelayServer> {
  const all = [...frames]
  const wakers = new Set<() => void>()
  const sockets = new Set<WebSocket>()
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((resolve) => wss.once('listening', resolve))
  const connections: Connection[] = []

  wss.on('connection', (ws, req) => {
    sockets.add(ws)
    const url = new URL(req.url ?? '/', 'http://x')
    const raw = url.searchParams.get('cursor')
    const cursor = raw === null ? null : Number(raw)
    const index = connections.length
    const conn: Connection = { cursor, sent: 0, closed: false }
    connections.push(conn)
    ws.on('close', () => {
      conn.closed = true
      sockets.delete(ws)
    })
    ws.on('error', () => {})
    void serve(ws, conn, index)
  })

  async function serve(ws: WebSocket, conn: Connection, index: number): Promise<void> {
    const last = all.at(-1)?.seq ?? 0
    if (conn.cursor !== null && conn.cursor > last) {
      ws.send(errorFrame('FutureCursor', 'Cursor in the future.'))
      ws.close(1008, 'FutureCursor')
      return
    }
    let i =
      conn.cursor === null ? all.length : all.findIndex((f) => f.seq > (conn.cursor as number))
    if (i < 0) i = all.length
    if (opts.ignoreCursor?.[index]) i = 0
    const drop = opts.dropAfter?.[index]
    const stall = opts.stallAfter?.[index]
    const socket = (ws as unknown as { _socket: NodeJS.WritableStream })._socket
    while (ws.readyState === ws.OPEN) {
      if (drop !== undefined && conn.sent >= drop) {
        ws.terminate()
        return
      }
      if (stall !== undefined && conn.sent >= stall) return // silent, socket left open
      const f = all[i]
      if (f === undefined) {
        await new Promise<void>((resolve) => {
          const wake = () => {
            wakers.delete(wake)
            ws.off('close', wake)
            resolve()
          }
          wakers.add(wake)
          ws.once('close', wake)
        })
        continue
      }
      ws.send(f.bytes)
      conn.sent++
      i++
      if (opts.rate) await new Promise((r) => setTimeout(r, 1000 / opts.rate!))
      else if (ws.bufferedAmount > 1 << 20) {
        // Websocket backpressure: wait until the kernel took what is queued.
        await new Promise<void>((resolve) => {
          const done = () => {
            socket.off('drain', done)
            ws.off('close', done)
            resolve()
          }
          socket.once('drain', done)
          ws.once('close', done)
        })
      } else if (conn.sent % 256 === 0) await new Promise((r) => setImmediate(r))
    }
  }

  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    connections,
    append(more) {
      all.push(...more)
      for (const wake of [...wakers]) wake()
    },
    async close() {
      for (const ws of sockets) ws.terminate()
      for (const wake of [...wakers]) wake()
      await new Promise<void>((resolve) => wss.close(() => resolve()))
    },
  }
}
