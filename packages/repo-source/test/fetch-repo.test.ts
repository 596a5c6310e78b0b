import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchRepo, RateLimitedError, resolvePds, retryAt } from '../src/index.js'
import { didDocument, type LocalServer, readAll, refusal, startLocalServer } from './helpers.js'

const DID = 'did:plc:abcdefghijklmnopqrstuvwx'
const CAR = randomBytes(200_000)
const RESET_EPOCH_S = 4_102_444_800 // 2100-01-01: far enough that the test never meets it

let server: LocalServer

beforeAll(async () => {
  server = await startLocalServer((_req, res, url) => {
    if (url.pathname === `/${DID}`) {
      res.writeHead(200).end(JSON.stringify(didDocument(DID, server.url)))
      return
    }
    const mode = url.searchParams.get('since') ?? 'whole'
    if (url.pathname !== '/xrpc/com.atproto.sync.getRepo' || url.searchParams.get('did') !== DID) {
      res.writeHead(400).end()
    } else if (mode === 'whole' || mode.startsWith('rev')) {
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car' })
      // Several writes, so the client sees the body arrive in pieces.
      for (let at = 0; at < CAR.length; at += 50_000) res.write(CAR.subarray(at, at + 50_000))
      res.end()
    } else if (mode === 'endless') {
      res.writeHead(200)
      // Until the client hangs up: a write to a closed socket would otherwise loop forever.
      const push = (): void => {
        if (!res.destroyed) res.write(Buffer.alloc(64 * 1024), () => setImmediate(push))
      }
      push()
    } else if (mode === 'silent') {
      // Accepts the request and never answers.
    } else if (mode === 'stall') {
      res.writeHead(200)
      res.write(Buffer.alloc(1000))
    } else if (mode === 'declared') {
      res.writeHead(200, { 'content-length': '10000000' })
      res.write(Buffer.alloc(1000))
    } else if (mode === 'cut') {
      res.writeHead(200, { 'content-length': '100000' })
      res.write(Buffer.alloc(1000), () => res.socket?.destroy())
    } else if (mode === 'retry-after') {
      res.writeHead(429, { 'retry-after': '30' }).end()
    } else if (mode === 'ratelimit-reset') {
      res.writeHead(429, { 'ratelimit-reset': String(RESET_EPOCH_S) }).end()
    } else if (mode === 'error') {
      res.writeHead(500).end()
    }
  })
})
afterAll(() => server.close())

const local = { allowPrivate: true }

describe('fetchRepo', () => {
  it('streams the CAR of a DID resolved through the PLC directory', async () => {
    const { pds } = await resolvePds(DID, { plcUrl: server.url })
    const { car, headers } = await fetchRepo(pds, DID, local)
    expect(headers['content-type']).toBe('application/vnd.ipld.car')
    expect((await readAll(car)).equals(CAR)).toBe(true)
  })

  it('asks only for what changed since a revision', async () => {
    const { car } = await fetchRepo(server.url, DID, { ...local, since: 'rev3kv2' })
    await readAll(car)
    expect(server.seen.at(-1)).toBe(
      `/xrpc/com.atproto.sync.getRepo?did=${encodeURIComponent(DID)}&since=rev3kv2`,
    )
  })

  it('refuses a PDS on a loopback address unless allowPrivate', async () => {
    const before = server.seen.length
    const err = await refusal(fetchRepo(server.url, DID))
    expect(err.reason).toBe('private_address')
    expect(server.seen.length).toBe(before)
  })

  it.each([
    ['ftp://127.0.0.1/', 'bad_scheme'],
    ['file:///etc/passwd', 'bad_scheme'],
    ['not a url', 'bad_url'],
  ])('refuses the endpoint %s: %s', async (pds, reason) => {
    expect((await refusal(fetchRepo(pds, DID, local))).reason).toBe(reason)
  })

  it('aborts a body past the byte limit', async () => {
    const { car } = await fetchRepo(server.url, DID, {
      ...local,
      since: 'endless',
      maxBytes: 1_000_000,
    })
    const err = await refusal(readAll(car))
    expect(err.reason).toBe('too_large')
  })

  it('refuses at once a body whose declared length is past the limit', async () => {
    const started = performance.now()
    const err = await refusal(
      fetchRepo(server.url, DID, { ...local, since: 'declared', maxBytes: 1_000_000 }),
    )
    expect(err.reason).toBe('too_large')
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it('times out on a server that never answers', async () => {
    const started = performance.now()
    const err = await refusal(
      fetchRepo(server.url, DID, { ...local, since: 'silent', timeoutMs: 300 }),
    )
    expect(err.reason).toBe('timeout')
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it('times out on a body that stops arriving', async () => {
    const { car } = await fetchRepo(server.url, DID, { ...local, since: 'stall', timeoutMs: 300 })
    const started = performance.now()
    expect((await refusal(readAll(car))).reason).toBe('timeout')
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it('ends a slow download at maxDurationMs', async () => {
    const { car } = await fetchRepo(server.url, DID, {
      ...local,
      since: 'stall',
      timeoutMs: 5000,
      maxDurationMs: 300,
    })
    expect((await refusal(readAll(car))).reason).toBe('timeout')
  })

  it('reports a body cut off before its length', async () => {
    const { car } = await fetchRepo(server.url, DID, { ...local, since: 'cut' })
    expect((await refusal(readAll(car))).reason).toBe('network')
  })

  it('turns a 429 with retry-after into a RateLimitedError with the time', async () => {
    const before = Date.now()
    const err = await refusal(fetchRepo(server.url, DID, { ...local, since: 'retry-after' }))
    expect(err).toBeInstanceOf(RateLimitedError)
    expect(err.reason).toBe('rate_limited')
    const at = (err as RateLimitedError).retryAt ?? 0
    expect(at).toBeGreaterThanOrEqual(before + 30_000)
    expect(at).toBeLessThanOrEqual(Date.now() + 30_000)
  })

  it('reads ratelimit-reset as epoch seconds', async () => {
    const err = await refusal(fetchRepo(server.url, DID, { ...local, since: 'ratelimit-reset' }))
    expect((err as RateLimitedError).retryAt).toBe(RESET_EPOCH_S * 1000)
  })

  it('refuses other statuses with the status', async () => {
    const err = await refusal(fetchRepo(server.url, DID, { ...local, since: 'error' }))
    expect([err.reason, err.status]).toEqual(['http_status', 500])
  })
})

describe('retryAt', () => {
  const now = 1_000_000
  it.each([
    [{ 'retry-after': '5' }, now + 5000],
    [{ 'retry-after': 'Wed, 21 Oct 2099 07:28:00 GMT' }, Date.parse('2099-10-21T07:28:00Z')],
    [{ 'ratelimit-reset': '2000000000' }, 2_000_000_000_000],
    [{ 'ratelimit-reset': '7' }, now + 7000],
    [{ 'retry-after': 'soon' }, undefined],
    [{}, undefined],
  ])('%j -> %s', (headers, expected) => expect(retryAt(headers, now)).toBe(expected))
})
