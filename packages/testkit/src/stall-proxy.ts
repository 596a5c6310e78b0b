import { connect, createServer, type Socket } from 'node:net'

// A TCP proxy in front of a Redis (or any server) that a test can stall: from the moment it stalls, every
// byte the clients send is held, in order, until resume(), while the server's replies still flow. A client
// connected through it is a client on a slow or partitioned link: the commands it already sent arrive late,
// after whatever other clients did meanwhile, which is what a delay inside the client cannot show. It can
// also hand the server's replies over a few bytes at a time, and drop every connection at once.

export interface StallProxyOptions {
  /**
   * Stalls as soon as a client sends bytes for which this returns true (those bytes are held too). It sees
   * each chunk with the last 128 bytes of that connection before it, so a match split across two TCP
   * chunks is still found.
   */
  stallWhen?: (bytes: Buffer) => boolean
  /**
   * Forwards the server's bytes to the client at most this many per write, one write per turn of the
   * event loop: a client in the same process then reads its replies split at every such boundary, as TCP
   * may split them on a real network. @default all at once, as they come
   */
  replyBytesPerWrite?: number
}

export interface StallProxy {
  /** `redis://127.0.0.1:<port>` */
  url: string
  port: number
  /** True from a stall (by call or by `stallWhen`) until resume(). */
  readonly stalled: boolean
  /** Bytes held so far in the current stall. */
  readonly heldBytes: number
  /** Bytes of the server forwarded to clients so far. */
  readonly repliedBytes: number
  stall(): void
  /** Sends what was held, each connection's bytes in their order, and lets traffic flow again. */
  resume(): void
  /** Drops every connection now, as a network failure would; new connections are still accepted. */
  drop(): void
  /** Stops listening and drops every connection. Idempotent. */
  close(): Promise<void>
}

const TAIL = 128

interface Pair {
  client: Socket
  upstream: Socket
  held: Buffer[]
  tail: Buffer
}

/** Listens on a free loopback port and forwards each connection to `target` (a `redis://host:port` URL). */
export async function startStallProxy(
  target: string,
  opts: StallProxyOptions = {},
): Promise<StallProxy> {
  const u = new URL(target)
  const host = u.hostname
  const port = u.port ? Number(u.port) : 6379
  const pairs = new Set<Pair>()
  let stalled = false
  let heldBytes = 0
  let repliedBytes = 0

  const server = createServer((client) => {
    const upstream = connect({ host, port })
    const pair: Pair = { client, upstream, held: [], tail: Buffer.alloc(0) }
    pairs.add(pair)
    client.on('data', (chunk: Buffer) => {
      if (!stalled && opts.stallWhen?.(Buffer.concat([pair.tail, chunk]))) stalled = true
      pair.tail = Buffer.from(Buffer.concat([pair.tail, chunk]).subarray(-TAIL))
      if (stalled) {
        pair.held.push(chunk)
        heldBytes += chunk.length
      } else upstream.write(chunk)
    })
    forward(upstream, client, opts.replyBytesPerWrite, (n) => {
      repliedBytes += n
    })
    const drop = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', drop)
    upstream.on('close', drop)
    // A dropped connection is the test's business (the client sees it close); not an uncaught error here.
    client.on('error', () => undefined)
    upstream.on('error', () => undefined)
  })
  await new Promise<void>((done, fail) => {
    server.once('error', fail)
    server.listen(0, '127.0.0.1', () => done())
  })
  const dropAll = () => {
    for (const pair of pairs) {
      pair.client.destroy()
      pair.upstream.destroy()
    }
  }
  const addr = server.address()
  const listenPort = typeof addr === 'object' && addr ? addr.port : 0
  let closed: Promise<void> | undefined
  return {
    url: `redis://127.0.0.1:${listenPort}`,
    port: listenPort,
    get stalled() {
      return stalled
    },
    get heldBytes() {
      return heldBytes
    },
    get repliedBytes() {
      return repliedBytes
    },
    stall() {
      stalled = true
    },
    resume() {
      stalled = false
      heldBytes = 0
      for (const pair of pairs) {
        for (const chunk of pair.held) pair.upstream.write(chunk)
        pair.held = []
      }
    },
    drop: dropAll,
    close() {
      closed ??= new Promise<void>((done) => {
        dropAll()
        server.close(() => done())
      })
      return closed
    },
  }
}

/** Forwards the server's bytes to the client: piped, or `size` bytes per write when a size is given. */
function forward(
  from: Socket,
  to: Socket,
  size: number | undefined,
  onBytes: (n: number) => void,
): void {
  if (size !== undefined) {
    dribble(from, to, size, onBytes)
    return
  }
  from.on('data', (chunk: Buffer) => onBytes(chunk.length))
  from.pipe(to)
}

/** Forwards `from`'s bytes to `to`, `size` bytes per write and one write per turn of the event loop. */
function dribble(from: Socket, to: Socket, size: number, onWrite: (n: number) => void): void {
  if (!Number.isSafeInteger(size) || size < 1) throw new Error(`bad replyBytesPerWrite ${size}`)
  // Without it, Nagle's algorithm would hold each small write until the last one is acknowledged.
  to.setNoDelay(true)
  const queue: Buffer[] = []
  const pump = () => {
    const head = queue[0]
    if (!head || to.destroyed) {
      queue.length = 0
      from.resume()
      return
    }
    const n = Math.min(size, head.length)
    to.write(head.subarray(0, n))
    onWrite(n)
    if (n === head.length) queue.shift()
    else queue[0] = head.subarray(n)
    setImmediate(pump)
  }
  from.on('data', (chunk: Buffer) => {
    // Held until these are through: the server's bytes keep their order, and its socket its backpressure.
    from.pause()
    queue.push(chunk)
    if (queue.length === 1) setImmediate(pump)
  })
}
