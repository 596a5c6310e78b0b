import { type ChildProcess, spawn } from 'node:child_process'
import { freePort } from '@circles/testkit'
import { Redis } from 'ioredis'

// A private redis-server for tests that need their own settings (maxmemory): never the shared one.
// (@circles/testkit has one too, but importing testkit loads the local PDS stack: seconds per test file.)

export interface PrivateRedis {
  url: string
  client: Redis
  stop(): Promise<void>
}

export async function startPrivateRedis(args: string[] = []): Promise<PrivateRedis> {
  const port = await freePort()
  const proc: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args],
    { stdio: 'ignore' },
  )
  const url = `redis://127.0.0.1:${port}`
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50,
  })
  // Refused connections while the server starts are expected; they are retried below.
  client.on('error', () => {})
  const until = Date.now() + 10_000
  for (;;) {
    try {
      await client.connect()
      await client.ping()
      break
    } catch (err) {
      client.disconnect()
      if (Date.now() > until) throw err
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return {
    url,
    client,
    async stop() {
      client.disconnect()
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r))
        proc.kill('SIGTERM')
        await exited
      }
    },
  }
}
