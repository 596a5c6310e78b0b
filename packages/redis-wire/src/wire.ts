import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import type { RedisOptions } from 'ioredis'
import RedisParser from 'redis-parser'
import { Frame } from './frame.js'

// The writer's phases go to Redis on a connection of their own, as RESP frames the writer builds itself.
// Through ioredis, a script call cost the indexer more CPU than preparing it: a Command object and a
// promise per call, every argument measured (Buffer.byteLength) and encoded one by one, and a pipeline that
// concatenates the lot (about a quarter of the indexer's CPU: BENCHMARKS.md, "Measurements the code relies on"). A frame is one
// buffer: keys encoded once per account are copied in as bytes, the operations are written in place, and
// one Promise stands for all the replies of a phase. Replies are parsed by redis-parser (what ioredis uses).

/** The connection is gone or could not be made: apply the batch again later (nothing is lost). */
export class WireError extends Error {
  override name = 'WireError'
}

interface Pending {
  expect: number
  replies: unknown[]
  resolve: (replies: unknown[]) => void
  reject: (err: Error) => void
}

/** Where and how to connect: the connection options of ioredis that apply to one plain connection. */
export type WireOptions = Pick<
  RedisOptions,
  | 'host'
  | 'port'
  | 'path'
  | 'username'
  | 'password'
  | 'db'
  | 'tls'
  | 'connectTimeout'
  | 'family'
  | 'commandTimeout'
>

/**
 * How long a connection may stay silent while replies are due, unless `commandTimeout` says otherwise.
 * Without a limit, a Redis that stops answering without closing the connection (a paused process, a
 * network path that drops packets) would hold the batch in hand forever; with it, the frames in flight
 * fail as a lost connection and are sent again on a new one. A phase takes well under a second.
 */
export const DEFAULT_REPLY_TIMEOUT_MS = 60_000

/**
 * One connection that sends frames and returns their replies, in order. It connects on the first frame and
 * again after it was lost; a frame sent while it connects waits and goes out in order after the handshake.
 * Error replies come back as values (redis-errors' ReplyError, as from ioredis); a lost connection, a
 * failed handshake, or no byte from Redis for `commandTimeout` (default `DEFAULT_REPLY_TIMEOUT_MS`) while
 * replies are due rejects every frame in flight with a WireError.
 */
export class Wire {
  /** One server: every command in frame order (FrameSender). */
  readonly routed = false
  private socket: Socket | null = null
  /** Frames written, waiting for replies (oldest first). */
  private inflight: Pending[] = []
  /** Frames waiting for the handshake. */
  private waiting: { frame: Frame; pending: Pending }[] = []
  private connected = false
  /** Set by close(): from then on frames are refused. */
  private closing: Promise<void> | null = null

  /**
   * @param onLost called when a connection is lost (or could not be made): Redis may have restarted, and
   *   then lost writes it had already answered (appendfsync everysec), so the caller forgets what it
   *   believes is written.
   */
  constructor(
    private readonly options: WireOptions,
    private readonly onLost: () => void = () => {},
  ) {}

  /** Sends a frame; resolves with one reply per command, in order. */
  send(frame: Frame): Promise<unknown[]> {
    if (this.closing) return Promise.reject(new WireError('connection closed'))
    // no reply will come for it: in flight, it would take the next frame's first reply
    if (frame.commands === 0) return Promise.resolve([])
    return new Promise<unknown[]>((resolve, reject) => {
      const pending: Pending = { expect: frame.commands, replies: [], resolve, reject }
      if (!this.socket) this.connect()
      if (this.connected) this.write(frame, pending)
      else this.waiting.push({ frame, pending })
    })
  }

  /**
   * Waits for the frames sent before it, then closes. Frames sent after it are refused: the socket goes
   * once the last frame before it is answered, and a frame written behind that one would never be.
   */
  close(): Promise<void> {
    this.closing ??= this.drain()
    return this.closing
  }

  private async drain(): Promise<void> {
    // The newest frame: those waiting for the handshake go out after the ones in flight (the handshake).
    const last = this.waiting.at(-1)?.pending ?? this.inflight.at(-1)
    if (last) {
      await new Promise<void>((resolve) => {
        const { resolve: res, reject: rej } = last
        last.resolve = (r) => {
          res(r)
          resolve()
        }
        last.reject = (e) => {
          rej(e)
          resolve()
        }
      })
    }
    this.socket?.destroy()
    this.socket = null
  }

  private write(frame: Frame, pending: Pending): void {
    const socket = this.socket as Socket
    if (this.inflight.length === 0) {
      socket.ref()
      socket.setTimeout(this.options.commandTimeout ?? DEFAULT_REPLY_TIMEOUT_MS)
    }
    this.inflight.push(pending)
    socket.write(frame.buf.subarray(0, frame.at))
  }

  private connect(): void {
    const o = this.options
    const socket: Socket = o.path
      ? netConnect(o.path)
      : o.tls
        ? tlsConnect({ host: o.host, port: o.port, ...o.tls })
        : netConnect({ host: o.host ?? '127.0.0.1', port: o.port ?? 6379, family: o.family })
    this.socket = socket
    this.connected = false
    socket.setNoDelay(true)
    socket.setTimeout(o.connectTimeout ?? 10_000)
    socket.on('timeout', () =>
      this.fail(
        socket,
        new WireError(
          this.connected || this.inflight.length > 0
            ? 'Redis did not answer in time'
            : 'connecting to Redis timed out',
        ),
      ),
    )
    const parser = new RedisParser({
      returnBuffers: true,
      returnReply: (reply: unknown) => this.reply(reply),
      returnError: (err: Error) => this.reply(err),
      returnFatalError: (err: Error) => this.fail(socket, new WireError(err.message)),
    })
    socket.on('data', (chunk: Buffer) => parser.execute(chunk))
    socket.on('error', (err) => this.fail(socket, new WireError(err.message)))
    socket.on('close', () => this.fail(socket, new WireError('connection to Redis closed')))
    socket.once(o.tls && !o.path ? 'secureConnect' : 'connect', () => {
      socket.setTimeout(0)
      // AUTH and SELECT as ioredis would, then PING: a server still loading its data answers -LOADING,
      // which must not reach the writer as an error about its data.
      const hello = new Frame(256)
      if (o.password) {
        if (o.username) hello.call('AUTH', o.username, o.password)
        else hello.call('AUTH', o.password)
      }
      if (o.db) hello.call('SELECT', o.db)
      hello.call('PING')
      this.write(hello, {
        expect: hello.commands,
        replies: [],
        resolve: (replies) => {
          const err = replies.find((r) => r instanceof Error) as Error | undefined
          if (err) return this.fail(socket, new WireError(`Redis handshake: ${err.message}`))
          this.connected = true
          const waiting = this.waiting
          this.waiting = []
          for (const w of waiting) this.write(w.frame, w.pending)
        },
        reject: () => {},
      })
    })
  }

  private reply(value: unknown): void {
    const head = this.inflight[0]
    if (!head) return
    head.replies.push(value)
    if (head.replies.length < head.expect) return
    this.inflight.shift()
    if (this.inflight.length === 0) {
      this.socket?.setTimeout(0)
      this.socket?.unref()
    }
    head.resolve(head.replies)
  }

  /** The connection is unusable: everything in flight or waiting fails, the next frame reconnects. */
  private fail(socket: Socket, err: WireError): void {
    if (this.socket !== socket) return
    this.socket = null
    this.connected = false
    socket.destroy()
    const failed = [...this.inflight, ...this.waiting.map((w) => w.pending)]
    this.inflight = []
    this.waiting = []
    // before the rejections: whoever retries must already know
    this.onLost()
    for (const p of failed) p.reject(err)
  }
}
