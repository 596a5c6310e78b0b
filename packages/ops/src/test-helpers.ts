import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A TCP port nobody listens on right now (the OS picks it). */
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

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `circles-ops-${label}-`))
}
