import { randomBytes } from 'node:crypto'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import { luaSource } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import type { BotAccount } from './config.js'
import type { BotCounters } from './metrics.js'
import { jwtExpiryMs, type PdsClient, type SessionTokens, XrpcError } from './pds-client.js'
import { open, seal } from './seal.js'

// One session for every bot process, kept in Redis (sealed, seal.ts). A process that finds the access
// token near its expiry takes a short lock and refreshes it; the others wait for the lock to go and read
// the new tokens, so a restart of many processes makes one login, not a stampede. A refresh token the PDS
// refuses (revoked, expired) leads to one new login. A login refused for its credentials is fatal: the
// service stops at start rather than retrying a wrong password until the PDS locks the account.

const RELEASE = luaSource(import.meta.url, 'release-lock')

/** What Redis holds (sealed): the tokens and when each stops working (ms). */
export interface StoredSession {
  accessJwt: string
  refreshJwt: string
  accessExp: number
  refreshExp: number
}

/** The process exits with this after a refused login: PM2's `stop_exit_codes` then leaves it stopped. */
export const EXIT_LOGIN_REFUSED = 78

export class LoginRefusedError extends Error {
  override name = 'LoginRefusedError'
  /** Read by runService (packages/config) as the exit code. */
  readonly exitCode = EXIT_LOGIN_REFUSED
}

export interface SessionOptions {
  redis: Redis
  schema: RedisSchema
  pds: PdsClient
  account: BotAccount
  counters: BotCounters
  log: Logger
  now?: () => number
  /** Refresh this long before the access token expires (ms). @default 300000 */
  marginMs?: number
  /** The lock's expiry: a holder that died frees it after this (ms). @default 15000 */
  lockMs?: number
}

export interface Session {
  /** A usable access token, refreshing or logging in first when needed. */
  accessToken(): Promise<string>
  /** The PDS refused `token` as expired or invalid: the next call refreshes (if nobody did meanwhile). */
  refused(token: string): Promise<void>
  read(): Promise<StoredSession | null>
}

/** Access tokens without `exp` (none seen from a PDS) are trusted for this long. */
const DEFAULT_ACCESS_MS = 10 * 60_000
const DEFAULT_REFRESH_MS = 30 * 86_400_000

function isRefused(err: unknown): boolean {
  return err instanceof XrpcError && (err.status === 400 || err.status === 401)
}

export function createSession(opts: SessionOptions): Session {
  const { redis, schema, pds, account, counters, log } = opts
  const now = opts.now ?? Date.now
  const marginMs = opts.marginMs ?? 300_000
  const lockMs = opts.lockMs ?? 15_000
  const key = schema.botSession(account.did)
  const lockKey = schema.botSessionLock(account.did)

  async function read(): Promise<StoredSession | null> {
    const sealed = await redis.get(key)
    if (sealed === null) return null
    try {
      return JSON.parse(open(account.sessionKey, sealed, account.did)) as StoredSession
    } catch (err) {
      // Another BOT_SESSION_KEY (rotated), or damaged: a new login replaces it.
      log.warn({ err }, 'the stored session does not open: logging in again')
      return null
    }
  }

  async function write(t: SessionTokens): Promise<StoredSession> {
    if (t.did !== account.did) {
      throw new LoginRefusedError(
        `BOT_IDENTIFIER logs in as ${t.did}, not as BOT_DID ${account.did}`,
      )
    }
    const s: StoredSession = {
      accessJwt: t.accessJwt,
      refreshJwt: t.refreshJwt,
      accessExp: jwtExpiryMs(t.accessJwt) ?? now() + DEFAULT_ACCESS_MS,
      refreshExp: jwtExpiryMs(t.refreshJwt) ?? now() + DEFAULT_REFRESH_MS,
    }
    const ttl = Math.max(1000, s.refreshExp - now())
    await redis.set(key, seal(account.sessionKey, JSON.stringify(s), account.did), 'PX', ttl)
    return s
  }

  async function login(): Promise<StoredSession> {
    counters.logins++
    try {
      return await write(await pds.createSession(account.identifier, account.password))
    } catch (err) {
      if (isRefused(err)) {
        throw new LoginRefusedError(
          `the PDS refused BOT_IDENTIFIER/BOT_APP_PASSWORD (${(err as XrpcError).error || (err as XrpcError).status}): check them; the bot does not retry a refused login`,
          { cause: err },
        )
      }
      throw err
    }
  }

  /** Under the lock: refresh `s` if its refresh token still works, else log in. */
  async function renew(s: StoredSession | null): Promise<StoredSession> {
    if (s !== null && s.refreshExp - marginMs > now()) {
      try {
        const fresh = await write(await pds.refreshSession(s.refreshJwt))
        counters.refreshes++
        log.info('session refreshed')
        return fresh
      } catch (err) {
        if (!isRefused(err)) throw err
        log.warn({ error: (err as XrpcError).error }, 'refresh token refused: logging in again')
      }
    }
    const fresh = await login()
    log.info('logged in')
    return fresh
  }

  const usable = (s: StoredSession | null): s is StoredSession =>
    s !== null && s.accessExp - marginMs > now()

  async function accessToken(): Promise<string> {
    for (;;) {
      const s = await read()
      if (usable(s)) return s.accessJwt
      const token = randomBytes(16).toString('hex')
      if ((await redis.set(lockKey, token, 'PX', lockMs, 'NX')) === 'OK') {
        try {
          // Reread under the lock: the previous holder may have just renewed it.
          const again = await read()
          return usable(again) ? again.accessJwt : (await renew(again)).accessJwt
        } finally {
          await redis.eval(RELEASE, 1, lockKey, token)
        }
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  async function refused(token: string): Promise<void> {
    const s = await read()
    if (s === null || s.accessJwt !== token) return
    await redis.set(
      key,
      seal(account.sessionKey, JSON.stringify({ ...s, accessExp: 0 }), account.did),
      'KEEPTTL',
    )
  }

  return { accessToken, refused, read }
}
