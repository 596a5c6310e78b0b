import { createTestRedis, type TestRedis } from '@circles/testkit'
import Fastify from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { queueBoard } from '../src/queue-board.js'

describe('queue board', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('fart-board')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  it('serves bull-board with every scheduler queue and the backfill queue under its base path, and closes them with the app', async () => {
    const app = Fastify()
    await app.register(queueBoard, {
      connection: t.redis,
      schema: t.schema,
      basePath: '/admin/queues',
    })
    const { queues } = app.queueBoard
    try {
      const page = await app.inject({ method: 'GET', url: '/admin/queues' })
      expect(page.statusCode).toBe(200)
      expect(page.headers['content-type']).toContain('text/html')
      const api = await app.inject({ method: 'GET', url: '/admin/queues/api/queues' })
      expect(api.statusCode).toBe(200)
      const names = (api.json() as { queues: { name: string }[] }).queues.map((q) => q.name).sort()
      expect(names).toEqual(['backfill', 'prune', 'rollup', 'snapshots', 'stats'])
    } finally {
      await app.close()
    }
    expect(queues.map((q) => q.closing !== undefined)).toEqual([true, true, true, true, true])
    // The connection is the caller's: still open.
    expect(t.redis.status).toBe('ready')
  })
})
