import { accessSync, constants } from 'node:fs'
import { createConnection } from 'node:net'
import { delimiter, join } from 'node:path'

/** Full path of `name` on the PATH, or undefined. */
export function findOnPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue
    const file = join(dir, name)
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch {
      // not here; keep looking
    }
  }
  return undefined
}

/**
 * The first line a Redis on host:port answers to PING (`+PONG`, or an error such as `-LOADING ...` or
 * `-NOAUTH ...`), or undefined when nothing answers within `timeoutMs`. A raw socket, not a client: a
 * client would retry and queue, and a refused port must answer "no" at once.
 */
export function pingReply(
  host: string,
  port: number,
  timeoutMs = 1000,
): Promise<string | undefined> {
  return new Promise((done) => {
    const socket = createConnection({ host, port })
    let reply = ''
    const finish = (line: string | undefined) => {
      clearTimeout(timer)
      socket.destroy()
      done(line)
    }
    const timer = setTimeout(() => finish(undefined), timeoutMs)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1')
      const end = reply.indexOf('\r\n')
      if (end >= 0) finish(reply.slice(0, end))
    })
    socket.on('error', () => finish(undefined))
  })
}

/** True when something answers a Redis PING on host:port within `timeoutMs`. */
export async function redisAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  const line = await pingReply(host, port, timeoutMs)
  // +PONG, or -NOAUTH / -ERR from a Redis that wants a password: either way a Redis is there.
  return line !== undefined && (line.startsWith('+') || line.startsWith('-'))
}
