import { createHash } from 'node:crypto'
import type { RedisSchema } from '@circles/redis-schema'
import { luaSource } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { MARK_PATTERN } from './backfill-view.js'

// The cache entry of a circle and the fixed answers that are not cached. Entries are
// `<opt-out version>\n<status>\n<backfill mark>\n<etag>\n<json>`. Every opt-out change bumps the version, so a
// circle made before someone opted out is never served again: they leave everyone's circles at once. The
// backfill mark says whether the account's backfill was done when the circle was made (backfill-view.ts): one
// made before is not served once it is. The ETag is the body's digest, made once with the body, so a
// conditional request costs no hashing.

export const OPTED_OUT_BODY = JSON.stringify({
  statusCode: 403,
  error: 'OptedOut',
  message: 'this account opted out: it has no circle and appears in no one else’s',
})

export const GONE_BODY = JSON.stringify({
  statusCode: 404,
  error: 'AccountUnavailable',
  message: 'this account is deleted, taken down or deactivated: it has no circle',
})

export const OPTED_OUT_BYTES = Buffer.from(OPTED_OUT_BODY)
export const GONE_BYTES = Buffer.from(GONE_BODY)

/**
 * What an actor route answers for an account it must not describe: 403 for an opted-out account, 404 once
 * the indexer purged it (deleted, taken down); null when it may be answered. Both reads in one round trip.
 */
export async function hiddenActorAnswer(
  redis: Redis,
  schema: RedisSchema,
  did: string,
): Promise<{ code: 403 | 404; body: string } | null> {
  const [optedOut, purged] = await Promise.all([
    redis.sismember(schema.optOuts, did),
    redis.exists(schema.accountPurged(did)),
  ])
  if (optedOut === 1) return { code: 403, body: OPTED_OUT_BODY }
  return purged === 1 ? { code: 404, body: GONE_BODY } : null
}

export function errorBody(statusCode: number, error: string, message: string): string {
  return JSON.stringify({ statusCode, error, message })
}

/** A strong ETag: the body's SHA-1, base64url (27 characters). */
export function etagOf(body: Buffer): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`
}

/** The head of a cache entry (KEYS[2]), or nil if the account was purged (KEYS[1] exists). */
export const HEAD_UNLESS_PURGED = luaSource(import.meta.url, 'head-unless-purged')

/** Deletes a computation's lock (KEYS[1]) only while it holds the caller's token (ARGV[1]). */
export const RELEASE_LOCK = luaSource(import.meta.url, 'release-lock')

export interface Entry {
  version: string
  status: 200 | 404 | 501
  /** The account's backfill mark when the circle was made (`backfillView`). */
  mark: string
  etag: string
  body: Buffer
}

const NL = 0x0a
const QUOTE = 0x22

/** The bytes stored for a computed answer. */
export function entryBytes(
  head: { version: string; status: number; mark: string; etag: string },
  body: Buffer,
): Buffer {
  const { version, status, mark, etag } = head
  return Buffer.concat([Buffer.from(`${version}\n${status}\n${mark}\n${etag}\n`), body])
}

/** The version and ETag from the head of a cache entry (its first bytes), or null. */
export function headOf(raw: Buffer): { version: string; etag: string } | null {
  const e = splitEntry(raw)
  return e && e.status === 200 ? { version: e.version, etag: e.etag } : null
}

/** Parses a cache entry (or its head: the body may be cut); null for anything else (an older layout). */
export function splitEntry(raw: Buffer): Entry | null {
  const a = raw.indexOf(NL)
  const b = a < 0 ? -1 : raw.indexOf(NL, a + 1)
  const c = b < 0 ? -1 : raw.indexOf(NL, b + 1)
  const d = c < 0 ? -1 : raw.indexOf(NL, c + 1)
  if (d < 0 || raw[c + 1] !== QUOTE) return null
  const status = Number(raw.toString('latin1', a + 1, b))
  if (status !== 200 && status !== 404 && status !== 501) return null
  const mark = raw.toString('latin1', b + 1, c)
  if (!MARK_PATTERN.test(mark)) return null
  return {
    version: raw.toString('latin1', 0, a),
    status,
    mark,
    etag: raw.toString('latin1', c + 1, d),
    body: raw.subarray(d + 1),
  }
}
