import { createLogger } from '@circles/logging'
import { afterEach, describe, expect, it } from 'vitest'
import type { Batch } from '../src/publisher.js'
import { RelaySession } from '../src/relay-session.js'
import { syntheticCorpus } from './frames.js'
import { served, waitFor } from './helpers.js'
import { type RelayServer, startRelayServer } from './relay-server.js'

const FRAMES = served(syntheticCorpus(3000, 9))
let server: RelayServer | null = null

afterEach(async () => {
  await server?.close()
  server = null
})

describe('RelaySession', () => {
  it('pauses the socket while a slow write is in flight, keeping memory bounded and order intact', async () => {
    server = await startRelayServer(FRAMES)
    const batches: Batch[] = []
    let pauses = 0
    const session = new RelaySession({
      url: `${server.url}/xrpc/com.atproto.sync.subscribeRepos?cursor=0`,
      cursor: 0,
      batchFrames: 50,
      flushIntervalMs: 10,
      stallTimeoutMs: 5000,
      // A slow Redis: every write takes 25 ms.
      publish: async (batch) => {
        await new Promise((r) => setTimeout(r, 25))
        batches.push(batch)
      },
      onFrame: () => {},
      onStale: () => {},
      onPause: () => {
        pauses++
      },
      log: createLogger('test'),
    })
    await waitFor('every frame written', () => batches.at(-1)?.seq === 3000, 30_000)
    session.stop('stopped')
    const end = await session.done
    expect(end).toMatchObject({ reason: 'stopped', committedFrames: 3000, cursor: 3000 })
    expect(pauses).toBeGreaterThan(0)
    // At most 4 batches wait behind a write, plus what the socket had already read when paused.
    expect(Math.max(...batches.map((b) => b.frames))).toBeLessThanOrEqual(4 * 50 + 100)
    expect(batches.reduce((n, b) => n + b.frames, 0)).toBe(3000)
    for (let i = 1; i < batches.length; i++) {
      expect((batches[i] as Batch).seq).toBeGreaterThan((batches[i - 1] as Batch).seq)
    }
  })
})
