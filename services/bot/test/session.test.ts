import { randomBytes } from 'node:crypto'
import { createLogger } from '@circles/logging'
import { resolvePds } from '@circles/repo-source'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { type LocalPds, type PdsAccount, startLocalPds } from '@circles/testkit/pds'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { BotAccount } from '../src/config.js'
import { type BotCounters, emptyCounters } from '../src/metrics.js'
import { PdsClient } from '../src/pds-client.js'
import { createSession, LoginRefusedError, type Session } from '../src/session.js'

const log = createLogger('bot:test')

let pds: LocalPds
let bot: PdsAccount
let appPassword: string
let t: TestRedis

beforeAll(async () => {
  pds = await startLocalPds()
  bot = await pds.createAccount('bot')
  const res = await bot.agent.com.atproto.server.createAppPassword({ name: 'circles-bot' })
  appPassword = res.data.password
})
afterAll(() => pds?.close())
beforeEach(async () => {
  t = await createTestRedis('bot-session')
})
afterEach(() => t.cleanup())

function account(overrides: Partial<BotAccount> = {}): BotAccount {
  return {
    did: bot.did,
    identifier: bot.handle,
    password: appPassword,
    sessionKey: Buffer.alloc(32, 7),
    ...overrides,
  }
}

function session(acc = account(), counters: BotCounters = emptyCounters()): Session {
  return createSession({
    redis: t.redis,
    schema: t.schema,
    pds: new PdsClient(pds.url),
    account: acc,
    counters,
    log,
  })
}

/** Whether the PDS takes `token` as the bot's (getSession answers with its DID). */
async function works(token: string): Promise<boolean> {
  const res = await fetch(`${pds.url}/xrpc/com.atproto.server.getSession`, {
    headers: { authorization: `Bearer ${token}` },
  })
  if (!res.ok) return false
  return ((await res.json()) as { did: string }).did === bot.did
}

/** Moves the stored access token's expiry into the past, as time passing would. */
async function expireAccess(s: Session): Promise<void> {
  const stored = await s.read()
  if (!stored) throw new Error('no stored session')
  // The session's own `refused` path stores exactly this: the same tokens with an expiry of 0.
  await s.refused(stored.accessJwt)
}

describe('bot session against a real PDS', () => {
  it('resolves the PDS from the DID through the PLC directory', async () => {
    const identity = await resolvePds(bot.did, { plcUrl: pds.plcUrl })
    expect(new URL(identity.pds).port).toBe(String(pds.port))
  })

  it('logs in once, keeps the tokens sealed in Redis with a TTL, and reuses them', async () => {
    const counters = emptyCounters()
    const s = session(account(), counters)
    const token = await s.accessToken()
    expect(await works(token)).toBe(true)
    expect(await s.accessToken()).toBe(token)
    expect(counters.logins).toBe(1)
    const raw = (await t.redis.get(t.schema.botSession(bot.did))) as string
    const stored = await s.read()
    expect(stored?.accessJwt).toBe(token)
    expect(raw).not.toContain(token.split('.')[1] as string)
    expect(Buffer.from(raw, 'base64').toString('latin1')).not.toContain('eyJ')
    expect(await t.redis.pttl(t.schema.botSession(bot.did))).toBeGreaterThan(86_400_000)
    expect(stored?.accessExp).toBeGreaterThan(Date.now())
    // Another process (another key in memory is the same key: the same env) reads it without a login.
    const other = emptyCounters()
    expect(await session(account(), other).accessToken()).toBe(token)
    expect(other.logins).toBe(0)
  })

  it('refreshes an expired access token, without a new login', async () => {
    const counters = emptyCounters()
    const s = session(account(), counters)
    await s.accessToken()
    const before = await s.read()
    await expireAccess(s)
    const second = await s.accessToken()
    // An access token made in the same second carries the same claims (no jti): the refresh token does.
    expect((await s.read())?.refreshJwt).not.toBe(before?.refreshJwt)
    expect((await s.read())?.accessExp).toBeGreaterThan(Date.now())
    expect(await works(second)).toBe(true)
    expect(counters).toMatchObject({ logins: 1, refreshes: 1 })
  })

  it('logs in again when the refresh token was revoked', async () => {
    const counters = emptyCounters()
    const s = session(account(), counters)
    await s.accessToken()
    const stored = await s.read()
    if (!stored) throw new Error('no stored session')
    await new PdsClient(pds.url).deleteSession(stored.refreshJwt)
    await expireAccess(s)
    const token = await s.accessToken()
    expect(await works(token)).toBe(true)
    expect(counters).toMatchObject({ logins: 2, refreshes: 0 })
  })

  it('renews once for many processes at once (the others wait and read it)', async () => {
    await session().accessToken()
    await expireAccess(session())
    const all = Array.from({ length: 6 }, () => emptyCounters())
    const tokens = await Promise.all(all.map((c) => session(account(), c).accessToken()))
    expect(new Set(tokens).size).toBe(1)
    expect(all.reduce((n, c) => n + c.refreshes + c.logins, 0)).toBe(1)
  })

  it('a wrong password fails with a clear error after one attempt', async () => {
    const counters = emptyCounters()
    const s = session(account({ password: 'not-the-password' }), counters)
    const err = await s.accessToken().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LoginRefusedError)
    expect((err as Error).message).toMatch(/BOT_IDENTIFIER\/BOT_APP_PASSWORD/)
    expect((err as Error).message).not.toContain('not-the-password')
    expect(counters.logins).toBe(1)
    expect(await t.redis.exists(t.schema.botSession(bot.did))).toBe(0)
  })

  it('a session sealed under another key is replaced by a new login', async () => {
    await session(account({ sessionKey: randomBytes(32) })).accessToken()
    const counters = emptyCounters()
    expect(await works(await session(account(), counters).accessToken())).toBe(true)
    expect(counters.logins).toBe(1)
  })
})
