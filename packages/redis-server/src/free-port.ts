import { createServer } from 'node:net'

/** A loopback TCP port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer()
    server.once('error', fail)
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address()
      server.close(() => done(typeof addr === 'object' && addr ? addr.port : 0))
    })
  })
}
