import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { did, type Harness, startHarness } from './helpers.js'

// GET /v1/avatars/:did against the real Redis and the fake AppView (its CDN serves a 16 px orange PNG):
// the thumbnail of a cached profile, and 404s that say nothing about an account that left.

describe('GET /v1/avatars/:did', () => {
  let h: Harness
  const WITH = did(1)
  const WITHOUT = did(2)
  const UNCACHED = did(3)
  const OUT = did(4)

  beforeAll(async () => {
    h = await startHarness()
    h.appview.profiles.set(WITH, { did: WITH, handle: 'with.test', avatar: true })
    h.appview.profiles.set(WITHOUT, { did: WITHOUT, handle: 'without.test' })
    h.appview.profiles.set(UNCACHED, { did: UNCACHED, handle: 'uncached.test', avatar: true })
    h.appview.profiles.set(OUT, { did: OUT, handle: 'out.test', avatar: true })
    // As a circle or the stats route would: the profiles enter the cache.
    h.appview.calls.length = 0
    await h.app.inject(`/v1/accounts/${WITH}/history?days=1`)
    await h.app.inject(`/v1/accounts/${WITHOUT}/history?days=1`)
    await h.app.inject(`/v1/accounts/${OUT}/history?days=1`)
    await h.t.redis.sadd(h.t.schema.optOuts, OUT)
  })
  afterAll(() => h?.close())

  it('serves a cached profile’s thumbnail as an image, cacheable', async () => {
    const res = await h.app.inject(`/v1/avatars/${encodeURIComponent(WITH)}`)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('image/png')
    expect(res.headers['cache-control']).toContain('max-age=')
    expect(res.rawPayload.subarray(1, 4).toString()).toBe('PNG')
  })

  it('404 without an avatar, without a cached profile (no AppView call), or for an opted-out account', async () => {
    const calls = h.appview.calls.length
    for (const d of [WITHOUT, UNCACHED, OUT]) {
      const res = await h.app.inject(`/v1/avatars/${encodeURIComponent(d)}`)
      expect(res.statusCode, d).toBe(404)
      expect(res.json().error).toBe('Not Found')
    }
    expect(h.appview.calls.length).toBe(calls)
  })

  it('400 for what is not a DID', async () => {
    for (const bad of ['did:plc:UPPER-case-nope', 'alice.test%2F..', 'did:nope:x'.repeat(3)]) {
      const res = await h.app.inject(`/v1/avatars/${bad}`)
      expect(res.statusCode, bad).toBe(400)
      // The same names as every other route's errors (the shared handler's HTTP status texts).
      expect(res.json().error, bad).toBe('Bad Request')
    }
  })
})
