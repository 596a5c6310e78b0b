import { createTestRedis, type TestRedis } from '@circles/testkit'
import Fastify from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { registerQueueBoard } from '../src/board.js'
import { createSchedulerQueues } from '../src/service.js'

describe('queue board', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('sched-board')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  it('serves bull-board with every scheduler queue under its base path', async () => {
    const queues = createSchedulerQueues(t.redis, t.schema)
    const app = Fastify()
    try {
      await registerQueueBoard(app, { queues: Object.values(queues), basePath: '/admin/queues' })
      const page = await app.inject({ method: 'GET', url: '/admin/queues' })
      expect(page.statusCode).toBe(200)
      expect(page.headers['content-type']).toContain('text/html')
      const api = await app.inject({ method: 'GET', url: '/admin/queues/api/queues' })
      expect(api.statusCode).toBe(200)
      const names = (api.json() as { queues: { name: string }[] }).queues.map((q) => q.name).sort()
      expect(names).toEqual(['prune', 'rollup', 'snapshots', 'stats'])
    } finally {
      await app.close()
      await Promise.all(Object.values(queues).map((q) => q.close()))
    }
  })
})
