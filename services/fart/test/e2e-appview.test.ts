import { createBskyClient } from '@circles/bsky-client'
import { tidFromMs } from '@circles/core'
import { createIndexReader, createIndexWriter } from '@circles/interaction-index'
import { createTestRedis, havePostgres, type TestRedis } from '@circles/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../src/app.js'
import type { Circle } from '../src/circles.js'
import { toConfig } from '../src/config.js'
import { type AppViewNetwork, DB_POSTGRES_URL, startAppViewNetwork } from './appview-network.js'

// End to end against the real Bluesky AppView from @atproto/dev-env: accounts with profiles and avatars
// on a real PDS, indexed by the real AppView; handles and avatars reach circles through bsky-client.

const enabled =
  process.env.FART_E2E !== '0' &&
  (await havePostgres(DB_POSTGRES_URL, 'the AppView end-to-end test'))

describe.skipIf(!enabled)('circles with profiles from a real AppView (dev-env TestNetwork)', () => {
  let net: AppViewNetwork
  let t: TestRedis
  const users: Record<string, string> = {}

  beforeAll(async () => {
    net = await startAppViewNetwork()
    t = await createTestRedis('fart-e2e')
    for (const name of ['alice', 'bob', 'carol']) {
      const acc = await net.seed.createAccount(name, {
        handle: `${name}.test`,
        email: `${name}@test.invalid`,
        password: 'hunter22',
      })
      users[name] = acc.did
    }
    await net.seed.createProfile(users.bob, 'Bob Builder', 'builds')
    await net.seed.createProfile(users.alice, 'Alice', 'hi')
    await net.processAll()
  }, 240_000)

  afterAll(async () => {
    await t?.cleanup()
    await net?.close()
  }, 60_000)

  it('bsky-client resolves handles and fetches profiles with avatars', async () => {
    const client = createBskyClient({ appviewUrl: net.appviewUrl })
    expect(await client.resolveHandle('bob.test')).toBe(users.bob)
    expect(await client.resolveHandle('nobody.test')).toBeNull()
    const profiles = await client.getProfiles([users.alice!, users.bob!, users.carol!])
    const bob = profiles.find((p) => p.did === users.bob)
    expect(bob).toMatchObject({ handle: 'bob.test', displayName: 'Bob Builder' })
    expect(bob?.avatar).toMatch(/^https?:\/\//)
    expect(profiles.find((p) => p.did === users.carol)?.handle).toBe('carol.test')
  })

  it('serves a circle by handle with the members’ handles and avatars', async () => {
    const writer = createIndexWriter(t.redis, t.schema)
    let time = Date.now() - 120_000
    const ev = (author: string, subject: string, kind: 'like' | 'reply') => ({
      type: 'create' as const,
      kind,
      author,
      subject,
      rkey: tidFromMs(time++),
      time,
      chars: 0,
    })
    await writer.apply([
      ev(users.alice!, users.bob!, 'reply'),
      ev(users.alice!, users.bob!, 'like'),
      ev(users.alice!, users.carol!, 'like'),
    ])
    const config = toConfig({
      REDIS_PREFIX: t.prefix,
      APPVIEW_URL: net.appviewUrl,
      RATE_LIMIT_MAX: '0',
    })
    const app = await buildApp({
      config,
      redis: t.redis,
      schema: t.schema,
      index: createIndexReader(t.redis, t.schema),
    })
    try {
      const r = await app.inject('/v1/circles/alice.test')
      expect(r.statusCode).toBe(200)
      const c = r.json() as Circle
      expect(c.profilesComplete).toBe(true)
      expect(c.actor).toMatchObject({
        did: users.alice,
        handle: 'alice.test',
        displayName: 'Alice',
      })
      const ms = c.rings.flatMap((g) => g.members)
      expect(ms.map((m) => m.handle)).toEqual(['bob.test', 'carol.test'])
      expect(ms[0]!.avatar).toMatch(/^https?:\/\//)
      expect(ms[1]!.avatar).toBeUndefined()
      const png = await app.inject('/v1/circles/alice.test.png')
      expect(png.statusCode).toBe(200)
      expect(png.headers['content-type']).toBe('image/png')
    } finally {
      await app.close()
    }
  })
})
