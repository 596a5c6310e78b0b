import { connect, createServer, type Socket } from 'node:net'

// A TCP proxy in front of a Redis (or any server) that a test can stall: from the moment it stalls, every
// byte the clients send is held, in order, until resume(), while the server's replies still flow. A client
// connected through it is a client on a slow or partitioned link: the commands it already sent arrive late,
// after whatever other clients did meanwhile, which is what a delay inside the client cannot show.

export interface StallProxyOptions {
  /**
   * Stalls as soon as a client sends bytes for which this returns true (those bytes are held too). It sees
   * each chunk with the last 128 bytes of that connection before it, so a match split across two TCP
   * chunks is still found.
   */
  stallWhen?: (bytes: Buffer) => boolean
}

export interface StallProxy {
  /** `redis://127.0.0.1:<port>` */
  url: string
  port: number
  /** True from a stall (by call or by `stallWhen`) until resume(). */
  readonly stalled: boolean
  /** Bytes held so far in the current stall. */
  readonly heldBytes: number
  stall(): void
  /** Sends what was held, each connection's bytes in their order, and lets traffic flow again. */
  resume(): void
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
    upstream.pipe(client)
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
    close() {
      closed ??= new Promise<void>((done) => {
        for (const pair of pairs) {
          pair.client.destroy()
          pair.upstream.destroy()
        }
        server.close(() => done())
      })
      return closed
    },
  }
}
