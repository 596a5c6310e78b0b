import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchRepo, PdsLimiter } from '../src/index.js'
import { type LocalServer, readAll, startLocalServer } from './helpers.js'

const DID = 'did:plc:abcdefghijklmnopqrstuvwx'

let server: LocalServer
let inFlight = 0
let mostInFlight = 0
const arrivals: { at: number; status: number }[] = []

beforeAll(async () => {
  server = await startLocalServer((_req, res) => {
    // The first request is rate-limited for a second; the rest answer after a moment, so they overlap.
    if (arrivals.length === 0) {
      arrivals.push({ at: Date.now(), status: 429 })
      res.writeHead(429, { 'retry-after': '1' }).end()
      return
    }
    arrivals.push({ at: Date.now(), status: 200 })
    inFlight++
    mostInFlight = Math.max(mostInFlight, inFlight)
    setTimeout(() => {
      inFlight--
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car' }).end('car bytes')
    }, 50)
  })
})
afterAll(() => server.close())

describe('PdsLimiter against a real server', () => {
  it('keeps to perHost, and after a 429 sends nothing to the host until retry-after, then retries', async () => {
    const limiter = new PdsLimiter({ perHost: 2 })
    const fetchOne = () =>
      limiter.run(server.url, async (observe) => {
        const { car, headers } = await fetchRepo(server.url, DID, { allowPrivate: true })
        observe(headers)
        return (await readAll(car)).toString()
      })
    const first = fetchOne()
    // The others start once the first was refused, while it waits: they must wait for the pause too.
    while (limiter.pausedUntil(server.url) === 0) await new Promise((r) => setTimeout(r, 5))
    const bodies = await Promise.all([first, ...[1, 2, 3, 4].map(fetchOne)])

    expect(bodies).toEqual(Array(5).fill('car bytes'))
    expect(arrivals.map((a) => a.status)).toEqual([429, 200, 200, 200, 200, 200])
    const refusedAt = arrivals[0]?.at as number
    for (const a of arrivals.slice(1)) expect(a.at - refusedAt).toBeGreaterThanOrEqual(990)
    expect(mostInFlight).toBe(2)
  })
})
