import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net'
import { encodeEvents, type StreamEvent } from '@circles/core'
import { createIndexWriter } from '@circles/interaction-index'
import { createSchema } from '@circles/redis-schema'
import { startRollbackRedis } from '@circles/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { toConfig } from '../src/config.js'
import { createIndexerService } from '../src/service.js'
import { canonicalExport, create, groupCounts, indexPart, plc, waitDrained } from './helpers.js'

// With appendfsync everysec, Redis answers writes before they reach the disk, and a kill -9 can lose the
// last second of them. When that happens between a batch's writes and its XACK, ioredis sends the XACK,
// unanswered, again to the restarted Redis, which takes it: the entries are acknowledged while the writes
// they made are gone. The indexer must then write the batch again. Emulated exactly: the batch's entries
// are pending (read, not yet applied) in a snapshot (RDB, no AOF); the indexer applies them through a
// TCP proxy that holds the first XACK, kills Redis with SIGKILL, restarts it from the snapshot and cuts
// every connection, so that the XACK goes to a Redis without the writes.

let cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
  cleanups = []
})

/**
 * Forwards connections from its own port to `port`. The first chunk a client sends that holds an XACK is
 * not forwarded: `onXack` runs instead, then every connection is cut (clients reconnect through it).
 */
async function startXackTrap(port: number, onXack: () => Promise<void>) {
  const sockets = new Set<Socket>()
  let sprung = false
  const cutAll = () => {
    for (const s of sockets) s.destroy()
    sockets.clear()
  }
  const server: Server = createServer((client) => {
    const upstream = netConnect({ host: '127.0.0.1', port })
    sockets.add(client)
    sockets.add(upstream)
    for (const [s, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      s.on('error', () => {})
      s.on('close', () => {
        sockets.delete(s)
        other.destroy()
      })
    }
    upstream.on('data', (chunk: Buffer) => client.write(chunk))
    client.on('data', (chunk: Buffer) => {
      if (!sprung && /\r\nxack\r\n/i.test(chunk.toString('latin1'))) {
        sprung = true
        client.pause()
        void onXack().finally(cutAll)
        return
      }
      upstream.write(chunk)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as { port: number }).port,
    get sprung() {
      return sprung
    },
    async close() {
      cutAll()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

describe('the indexer service when Redis loses a batch between its writes and its XACK', () => {
  it('writes the batch again, and the index holds it', async () => {
    const server = await startRollbackRedis()
    cleanups.push(() => server.stop())
    const redis = server.redis
    const prefix = `xack:${randomBytes(4).toString('hex')}:`
    const schema = createSchema(prefix)
    const consumer = 'xack-1'

    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => plc(`xack-${name}`)) as [
      string,
      string,
      string,
      string,
    ]
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000
    const events: StreamEvent[] = [
      create(a, b, 'like', hour - 2 * 3_600_000 + 1000),
      create(c, d, 'like', hour - 3_600_000 + 1000),
      create(c, a, 'repost', hour - 3_600_000 + 2000),
      create(d, a, 'reply', hour + 1000, undefined, 12),
    ]
    // Two entries, read by the indexer's consumer and not yet applied when the snapshot is taken.
    await redis.xadd(schema.eventStream, '*', 'e', encodeEvents(events.slice(0, 2)))
    await redis.xadd(schema.eventStream, '*', 'e', encodeEvents(events.slice(2)))
    await redis.xgroup('CREATE', schema.eventStream, schema.indexerGroup, '0', 'MKSTREAM')
    await redis.xreadgroup(
      'GROUP',
      schema.indexerGroup,
      consumer,
      'STREAMS',
      schema.eventStream,
      '>',
    )
    await server.snapshot()

    const trap = await startXackTrap(server.port, () => server.rollback())
    cleanups.push(() => trap.close())
    const indexer = createIndexerService(
      toConfig({
        REDIS_URL: `redis://127.0.0.1:${trap.port}`,
        REDIS_PREFIX: prefix,
        INDEXER_CONSUMER: consumer,
        INDEXER_BLOCK_MS: '100',
        INDEXER_RETRY_MS: '100',
      }),
    )
    cleanups.push(() => indexer.close())
    await indexer.start()
    // The entries are acknowledged on the Redis restarted from the snapshot, whatever became of the writes.
    await waitDrained(redis, schema.eventStream, schema.indexerGroup)
    expect(trap.sprung).toBe(true)
    await indexer.close()
    expect(await groupCounts(redis, schema.eventStream, schema.indexerGroup)).toEqual({
      lag: 0,
      pending: 0,
    })

    // The same events written once by a writer of its own, under another prefix, on the same Redis.
    const refPrefix = `xackref:${randomBytes(4).toString('hex')}:`
    const writer = createIndexWriter(redis, createSchema(refPrefix))
    await writer.apply(events)
    await writer.close()
    const want = indexPart(await canonicalExport(redis, refPrefix), refPrefix)
    expect(Object.keys(want).length).toBeGreaterThan(5)
    const got = indexPart(await canonicalExport(redis, prefix), prefix)
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort())
    expect(got).toEqual(want)
    // written again because a connection was lost before the XACK's reply
    expect(indexer.counters().retries).toBeGreaterThan(0)
  }, 60_000)
})
