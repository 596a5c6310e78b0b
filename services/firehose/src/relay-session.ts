import type { Logger } from '@circles/logging'
import WebSocket from 'ws'
import { decodeFrame } from './fast-decoder.js'
import {
  type DecodeOptions,
  type FrameResult,
  malformed,
  type RelayErrorFrame,
} from './frame-result.js'
import type { Batch } from './publisher.js'
import { emptyShards, type Route, routeEvents } from './shard-route.js'

export type EndReason =
  /** The server closed the socket (after an error frame, `errorFrame` is set). */
  | 'closed'
  /** No message for `stallTimeoutMs`. */
  | 'stall'
  /** Writing a batch failed: the session stopped so that it restarts from the stored cursor. */
  | 'publish-failed'
  /** The indexer group's lag passed the bound. */
  | 'backpressure'
  /** Redis no longer holds the cursor it held for us (it lost its data): resume from our own memory. */
  | 'cursor-lost'
  /** The service is closing. */
  | 'stopped'

export interface SessionEnd {
  reason: EndReason
  /** Frames whose events and cursor reached Redis during this session. */
  committedFrames: number
  /** The last cursor this session wrote (or the one it started from). */
  cursor: number | null
  code?: number
  errorFrame?: RelayErrorFrame
  socketError?: Error
}

export interface SessionOptions {
  /** Full subscribeRepos URL, cursor included. */
  url: string
  /** The cursor this session starts after: frames at or below it are replays and are skipped. */
  cursor: number | null
  /**
   * The stream shards and the cursor each held at the start (shard-route.ts). @default one shard, at
   * `cursor`
   */
  route?: Route
  batchFrames: number
  flushIntervalMs: number
  stallTimeoutMs: number
  /** How frames are decoded (the service's account, whose blocks are opt-outs). */
  decode?: DecodeOptions
  /** Writes one batch (entries + cursor, atomically); a rejection ends the session. */
  publish(batch: Batch): Promise<void>
  /** Called for every decoded frame (metrics, logging). */
  onFrame(result: FrameResult): void
  /** Called for frames whose seq is not above the cursor. */
  onStale(seq: number): void
  /** Called when the socket is paused because a write is in flight and the next batch is full. */
  onPause?(): void
  log: Logger
}

/** How many batches' worth of frames may wait in memory behind the write in flight. */
const PENDING_BATCHES = 4

function emptyBatch(shards: number): Batch {
  return { shards: emptyShards(shards), mentions: [], seq: -1, frames: 0, time: 0 }
}

/**
 * One websocket connection to the relay. Frames are decoded as they arrive and gathered into a batch;
 * a batch is written when it is full or `flushIntervalMs` after its first frame. Only one write is in
 * flight at a time: if it failed, a later batch must not be written past the gap. Frames arriving
 * meanwhile gather (written together when the write returns); once `PENDING_BATCHES` batches' worth
 * wait, the socket is paused, so frames wait in the kernel's buffers (and the server's send queue)
 * instead of piling up in memory.
 */
export class RelaySession {
  readonly done: Promise<SessionEnd>
  private resolveDone!: (end: SessionEnd) => void
  private readonly ws: WebSocket
  private readonly route: Route
  private pending: Batch
  private highestSeq: number
  private committed: number | null
  private committedFrames = 0
  private inFlight: Promise<void> | null = null
  private flushTimer: NodeJS.Timeout | null = null
  private readonly stallTimer: NodeJS.Timeout
  private lastActivity = Date.now()
  private paused = false
  private ended = false
  private failed = false
  private endReason: EndReason | null = null
  private errorFrame: RelayErrorFrame | undefined
  private socketError: Error | undefined

  constructor(private readonly opts: SessionOptions) {
    this.highestSeq = opts.cursor ?? -1
    this.route = opts.route ?? { shards: 1, floors: [this.highestSeq] }
    this.pending = emptyBatch(this.route.shards)
    this.committed = opts.cursor
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve
    })
    this.ws = new WebSocket(opts.url, {
      perMessageDeflate: false,
      handshakeTimeout: opts.stallTimeoutMs,
      // Relay frames are capped well below this (tooBig commits carry no blocks).
      maxPayload: 32 * 1024 * 1024,
    })
    this.ws.on('open', () => {
      this.lastActivity = Date.now()
      opts.log.info({ url: opts.url }, 'connected to relay')
    })
    this.ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary))
    this.ws.on('error', (err) => {
      this.socketError = err
    })
    this.ws.on('close', (code) => {
      void this.finish(code)
    })
    const tick = Math.max(20, Math.min(1000, Math.floor(opts.stallTimeoutMs / 4)))
    this.stallTimer = setInterval(() => this.checkStall(), tick)
  }

  /** Ends the session: the socket is dropped at once, frames not yet in a batch are read again later. */
  stop(reason: EndReason): void {
    if (this.endReason === null) this.endReason = reason
    this.ended = true
    this.ws.terminate()
  }

  private checkStall(): void {
    // While paused by us the silence is ours, not the relay's.
    if (this.ended || this.paused) return
    if (Date.now() - this.lastActivity > this.opts.stallTimeoutMs) this.stop('stall')
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.ended) return
    const now = Date.now()
    this.lastActivity = now
    // A plain Uint8Array view: its subarrays are cheaper than a Buffer's.
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    let result: FrameResult
    try {
      result = decodeFrame(isBinary ? bytes : new Uint8Array(0), now, this.opts.decode)
    } catch (err) {
      // decodeFrame reports bad input instead of throwing; this guards against a bug taking the
      // process down from inside the socket's event handler.
      this.opts.log.error({ err }, 'decoding a frame threw; skipping it')
      result = malformed()
    }
    this.opts.onFrame(result)
    if (result.kind === 'error') {
      // The server closes the socket right after an error frame; the service reports it then.
      this.errorFrame = result.error
      return
    }
    if (result.seq === null) return
    if (result.seq <= this.highestSeq) {
      this.opts.onStale(result.seq)
      return
    }
    this.highestSeq = result.seq
    const batch = this.pending
    batch.seq = result.seq
    batch.time = result.time ?? now
    batch.frames++
    routeEvents(batch.shards, result.events, result.seq, this.route)
    // Mentions go with shard 0's entries (the bot reads that stream only).
    if (result.mentions !== null && result.seq > (this.route.floors[0] as number)) {
      batch.mentions?.push(...result.mentions)
    }
    if (batch.frames >= this.opts.batchFrames) this.flush()
    else if (this.flushTimer === null) {
      this.flushTimer = setTimeout(() => this.flush(), this.opts.flushIntervalMs)
    }
  }

  private flush(): void {
    if (this.flushTimer !== null) {
      clearTimeout(this.flushTimer)
      this.flushTimer = null
    }
    if (this.failed || this.pending.frames === 0) return
    if (this.inFlight !== null) {
      // Up to PENDING_BATCHES batches may gather while a write is in flight (they go out together when
      // it returns): a slow reply from Redis then does not stop the socket at once. Past that, pause.
      const limit = PENDING_BATCHES * this.opts.batchFrames
      if (this.pending.frames >= limit && !this.paused && !this.ended) {
        this.paused = true
        this.ws.pause()
        this.opts.onPause?.()
      }
      return
    }
    const batch = this.pending
    this.pending = emptyBatch(this.route.shards)
    this.inFlight = this.opts.publish(batch).then(
      () => {
        this.inFlight = null
        this.committed = batch.seq
        this.committedFrames += batch.frames
        if (this.paused && !this.ended) {
          this.paused = false
          this.lastActivity = Date.now()
          this.ws.resume()
        }
        if (this.pending.frames >= this.opts.batchFrames) this.flush()
        else if (this.pending.frames > 0 && this.flushTimer === null && !this.ended) {
          this.flushTimer = setTimeout(() => this.flush(), this.opts.flushIntervalMs)
        }
      },
      (err: unknown) => {
        this.inFlight = null
        this.failed = true
        this.pending = emptyBatch(this.route.shards)
        this.opts.log.error({ err, cursor: this.committed }, 'writing a batch failed')
        this.stop('publish-failed')
      },
    )
  }

  private async finish(code: number): Promise<void> {
    this.ended = true
    clearInterval(this.stallTimer)
    if (this.flushTimer !== null) clearTimeout(this.flushTimer)
    this.flushTimer = null
    // Frames already decoded are contiguous with the cursor: write them before ending.
    while (this.inFlight !== null) await this.inFlight
    if (!this.failed && this.pending.frames > 0) {
      this.flush()
      while (this.inFlight !== null) await this.inFlight
    }
    this.resolveDone({
      reason: this.endReason ?? 'closed',
      committedFrames: this.committedFrames,
      cursor: this.committed,
      code,
      ...(this.errorFrame ? { errorFrame: this.errorFrame } : {}),
      ...(this.socketError ? { socketError: this.socketError } : {}),
    })
  }
}
