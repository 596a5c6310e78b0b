import { startRedisServer } from '@circles/testkit'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { authOf } from '../src/admin-guard.js'
import { ADMIN_TOKEN, buildSecondApp, did, type Harness, startHarness } from './helpers.js'

// Basic credentials go along with any request a browser makes to the site, a form on another site included:
// with them the admin routes and the queue board are read-only, writes need the bearer token, and a write
// from another site is refused whatever it carries.

const A = did(1)
const bearer = `Bearer ${ADMIN_TOKEN}`
const basic = `Basic ${Buffer.from(`ops:${ADMIN_TOKEN}`).toString('base64')}`
const RETRY = '/admin/queues/api/queues/rollup/retry/failed'

describe('admin writes: bearer only, same origin only', () => {
  let h: Harness
  let app: FastifyInstance
  let conn: Redis
  beforeAll(async () => {
    h = await startHarness()
    conn = new Redis(h.t.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    app = await buildSecondApp(h, { queueBoard: { connection: conn } })
  })
  afterAll(async () => {
    await app.close() // closes the board's queues
    conn.disconnect()
    await h.close()
  })

  function expectRefused(
    r: { statusCode: number; json(): { error: string; message: string } },
    why: RegExp,
  ) {
    expect(r.statusCode).toBe(403)
    expect(r.json().error).toBe('Forbidden')
    expect(r.json().message).toMatch(why)
  }

  it('refuses a cross-site write to the queue board or an admin list, whatever credentials it carries', async () => {
    for (const authorization of [basic, bearer]) {
      for (const headers of [
        { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
        { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' },
        { 'sec-fetch-site': 'same-site' },
        { origin: 'null' },
      ]) {
        for (const [method, url] of [
          ['PUT', RETRY],
          ['POST', '/admin/queues/api/queues/rollup/add'],
          ['PUT', `/admin/opt-outs/${A}`],
          ['DELETE', `/admin/tracked/${A}`],
        ] as const) {
          const r = await app.inject({
            method,
            url,
            headers: { ...headers, authorization },
            payload: 'a=1',
          })
          expectRefused(r, /cross-site admin request refused/)
        }
      }
    }
    expect(await h.t.redis.sismember(h.t.schema.optOuts, A)).toBe(0)
  })

  it('lets Basic read (the board in a browser) but not write, even from this origin', async () => {
    expect(
      (await app.inject({ url: '/admin/queues', headers: { authorization: basic } })).statusCode,
    ).toBe(200)
    expect(
      (await app.inject({ url: '/admin/opt-outs', headers: { authorization: basic } })).statusCode,
    ).toBe(200)
    const sameOrigin = {
      origin: 'http://localhost:80',
      'sec-fetch-site': 'same-origin',
      authorization: basic,
    }
    expectRefused(
      await app.inject({ method: 'PUT', url: RETRY, headers: sameOrigin }),
      /need Authorization: Bearer/,
    )
    expectRefused(
      await app.inject({ method: 'PUT', url: `/admin/tracked/${A}`, headers: sameOrigin }),
      /Basic \(the browser login\) is read-only/,
    )
    expect(await h.t.redis.sismember(h.t.schema.tracked, A)).toBe(0)
  })

  it('lets the bearer token write: from a script (no Origin) or from this origin', async () => {
    const script = await app.inject({
      method: 'PUT',
      url: `/admin/tracked/${A}`,
      headers: { authorization: bearer },
    })
    expect(script.statusCode).toBe(200)
    const sameOrigin = await app.inject({
      method: 'DELETE',
      url: `/admin/tracked/${A}`,
      headers: {
        authorization: bearer,
        origin: 'http://localhost',
        'sec-fetch-site': 'same-origin',
      },
    })
    expect(sameOrigin.json()).toEqual({ did: A, member: false, changed: true })
    const board = await app.inject({
      method: 'PUT',
      url: RETRY,
      headers: { authorization: bearer },
    })
    expect(board.statusCode).toBeLessThan(300)
  })

  it('reads credentials as before: bearer, Basic with any user name, wrong ones refused', () => {
    expect(authOf(bearer, ADMIN_TOKEN)).toBe('bearer')
    expect(authOf(basic, ADMIN_TOKEN)).toBe('basic')
    expect(authOf(`Basic ${Buffer.from(`:${ADMIN_TOKEN}`).toString('base64')}`, ADMIN_TOKEN)).toBe(
      'basic',
    )
    for (const wrong of [
      'Bearer x',
      `bearer ${ADMIN_TOKEN}`,
      `Bearer ${ADMIN_TOKEN}x`,
      `Bearer  ${ADMIN_TOKEN}`,
      `Basic ${Buffer.from(ADMIN_TOKEN).toString('base64')}`,
      `Basic ${Buffer.from(`ops:${ADMIN_TOKEN.slice(1)}`).toString('base64')}`,
      `Digest ${ADMIN_TOKEN}`,
      ADMIN_TOKEN,
      undefined,
    ]) {
      expect(authOf(wrong, ADMIN_TOKEN), String(wrong)).toBeNull()
    }
  })
})

describe('queue board without its Redis', () => {
  it('answers 503 with Retry-After at once, not a hang or bull-board’s 500', async () => {
    const h = await startHarness()
    // The board's queues on a Redis of their own, stopped once they are connected; the API's is fine.
    const server = await startRedisServer()
    const conn = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    conn.on('error', () => {}) // refused once stopped: expected
    const app = await buildSecondApp(h, { queueBoard: { connection: conn } })
    try {
      // The board's queues are connected and answer: then their Redis stops.
      const up = await app.inject({
        url: '/admin/queues/api/queues',
        headers: { authorization: bearer },
      })
      expect(up.statusCode).toBe(200)
      await server.stop()
      while (conn.status === 'ready') await new Promise((r) => setTimeout(r, 10))
      const r = await app.inject({
        url: '/admin/queues/api/queues',
        headers: { authorization: bearer },
      })
      expect(r.statusCode).toBe(503)
      expect(r.headers['retry-after']).toBe('5')
      expect(r.json()).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'Redis is unreachable: try again in 5 s',
      })
    } finally {
      await app.close()
      conn.disconnect()
      await server.stop()
      await h.close()
    }
  })
})
