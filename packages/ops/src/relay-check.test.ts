import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { checkRelay } from './doctor.js'
import { freePort } from './test-helpers.js'

describe('checkRelay', () => {
  const http = createServer((_req, res) => res.writeHead(404).end('not a relay'))
  const wss = new WebSocketServer({ noServer: true })
  let base = ''

  beforeAll(async () => {
    http.on('upgrade', (req, socket, head) => {
      if (req.url !== '/xrpc/com.atproto.sync.subscribeRepos') {
        socket.end('HTTP/1.1 404 Not Found\r\n\r\n')
        return
      }
      wss.handleUpgrade(req, socket, head, (ws) => ws.close())
    })
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    base = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`
  })

  afterAll(async () => {
    wss.close()
    await new Promise((r) => http.close(r))
  })

  it('is ok when the relay accepts the websocket', async () => {
    const check = await checkRelay(base, 2000)
    expect(check.status).toBe('ok')
  })

  it('fails on an HTTP answer, a closed port and a bad URL, saying which', async () => {
    const wrong = await checkRelay(`${base}/elsewhere/xrpc/com.atproto.sync.subscribeRepos`, 2000)
    expect(wrong).toMatchObject({ status: 'fail', message: expect.stringMatching(/HTTP 404/) })
    const closed = await checkRelay(`ws://127.0.0.1:${await freePort()}`, 2000)
    expect(closed).toMatchObject({ status: 'fail', message: expect.stringMatching(/cannot reach/) })
    expect((await checkRelay('not a url')).status).toBe('fail')
  })
})
