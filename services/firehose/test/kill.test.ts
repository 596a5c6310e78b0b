import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { syntheticCorpus } from './frames.js'
import {
  byShard,
  expectedEvents,
  lowestCursor,
  REDIS_URL,
  served,
  shardEvents,
  type TestRedis,
  testRedis,
  waitFor,
} from './helpers.js'
import { type RelayServer, startRelayServer } from './relay-server.js'

// kill -9 at arbitrary instants, then restart: the stream must hold every event exactly once (with 2
// shards: each shard's stream every event of its accounts, exactly once, although each shard's cursor moves
// in a MULTI of its own). This runs the built service (`node dist/src/main.js`) as a real child process, so
// the build comes first.

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

function runMain(shards: number): ChildProcess {
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
      FIREHOSE_SHARDS: String(shards),
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

describe.each([1, 2])('kill -9 and restart, %i shard(s)', (shards) => {
  it('loses and repeats nothing', async () => {
    expect(existsSync(main)).toBe(true)
    const cursor = async () => (await lowestCursor(t.redis, t.schema, shards)) ?? 0
    const connected = server.connections.length
    const cursorsAtKill: number[] = []
    for (let round = 0; round < 4; round++) {
      const before = await cursor()
      const child = runMain(shards)
      await waitFor('progress', async () => (await cursor()) > before + 150)
      // Somewhere in the middle of a batch, a write, or a decode: the timing is not chosen.
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 40)))
      child.kill('SIGKILL')
      await exited(child)
      cursorsAtKill.push(await cursor())
    }
    const last = runMain(shards)
    await waitFor('the last cursor', async () => (await cursor()) === LAST)
    last.kill('SIGTERM')
    expect(await exited(last)).toBe(0)

    expect(cursorsAtKill.at(-1)).toBeLessThan(LAST)
    // Every restart asked the relay for exactly the (lowest) cursor stored when the process died.
    const asked = server.connections.slice(connected + 1, connected + 5).map((c) => c.cursor)
    expect(asked).toEqual(cursorsAtKill)
    expect(await shardEvents(t.redis, t.schema, shards)).toEqual(
      byShard(expectedEvents(FRAMES, Date.now()), shards),
    )
    await t.redis.del(...(await t.redis.keys(`${t.prefix}*`)))
  })
})
