import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { syntheticCorpus } from './frames.js'
import {
  expectedEvents,
  REDIS_URL,
  served,
  storedCursor,
  streamEvents,
  type TestRedis,
  testRedis,
  waitFor,
} from './helpers.js'
import { type RelayServer, startRelayServer } from './relay-server.js'

// kill -9 at arbitrary instants, then restart: the stream must hold every event exactly once. This runs
// the built service (`node dist/src/main.js`) as a real child process, so the build comes first.

const root = fileURLToPath(new URL('../../..', import.meta.url))
const main = fileURLToPath(new URL('../dist/src/main.js', import.meta.url))
const FRAMES = served(syntheticCorpus(2500, 5))
const LAST = FRAMES.at(-1)?.seq as number

let t: TestRedis
let server: RelayServer

beforeAll(async () => {
  execFileSync(
    process.execPath,
    [`${root}/node_modules/typescript/bin/tsc`, '--build', `${root}/services/firehose`],
    { stdio: 'inherit' },
  )
  t = await testRedis()
  server = await startRelayServer(FRAMES, { rate: 4000 })
})

afterAll(async () => {
  await server?.close()
  await t?.cleanup()
})

function runMain(): ChildProcess {
  return spawn(process.execPath, [main], {
    env: {
      ...process.env,
      LOG_LEVEL: 'silent',
      RELAY_URL: server.url,
      REDIS_URL,
      REDIS_PREFIX: t.prefix,
      FIREHOSE_CURSOR: '0',
      FIREHOSE_BATCH_FRAMES: '40',
      FIREHOSE_FLUSH_MS: '5',
      FIREHOSE_EVENTS_PER_ENTRY: '25',
      FIREHOSE_BACKOFF_MIN_MS: '20',
    },
    stdio: 'ignore',
  })
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode)
    else child.once('exit', (code) => resolve(code))
  })
}

describe('kill -9 and restart', () => {
  it('loses and repeats nothing', async () => {
    expect(existsSync(main)).toBe(true)
    const cursorsAtKill: number[] = []
    for (let round = 0; round < 4; round++) {
      const before = (await storedCursor(t.redis, t.schema)) ?? 0
      const child = runMain()
      await waitFor(
        'progress',
        async () => ((await storedCursor(t.redis, t.schema)) ?? 0) > before + 150,
      )
      // Somewhere in the middle of a batch, a write, or a decode: the timing is not chosen.
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 40)))
      child.kill('SIGKILL')
      await exited(child)
      cursorsAtKill.push((await storedCursor(t.redis, t.schema)) as number)
    }
    const last = runMain()
    await waitFor('the last cursor', async () => (await storedCursor(t.redis, t.schema)) === LAST)
    last.kill('SIGTERM')
    expect(await exited(last)).toBe(0)

    expect(cursorsAtKill.at(-1)).toBeLessThan(LAST)
    // Every restart asked the relay for exactly the cursor that was stored when the process died.
    expect(server.connections.slice(1, 5).map((c) => c.cursor)).toEqual(cursorsAtKill)
    expect(await streamEvents(t.redis, t.schema)).toEqual(expectedEvents(FRAMES, Date.now()))
  })
})
