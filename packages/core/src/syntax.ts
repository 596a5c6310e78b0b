// Strict validators for every identifier that can end up inside a Redis key or a stream entry.
// They follow the atproto lexicon syntax specs, narrowed to what the network actually uses.

const PLC_RE = /^did:plc:[a-z2-7]{24}$/
// did:web is a hostname, optionally with an encoded port (%3A); no paths (the spec forbids them for atproto).
const WEB_RE =
  /^did:web:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z][a-zA-Z0-9-]{0,61}(?:%3[aA][0-9]{1,5})?$/
const TID_RE = /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/
const RKEY_RE = /^[A-Za-z0-9._:~-]{1,512}$/
const NSID_RE = /^[a-zA-Z](?:[a-zA-Z0-9-]{0,62})?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,62})?)+$/
const HANDLE_RE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/

/** Only the two DID methods atproto blesses; anything else is rejected before it reaches a key. */
export function isValidDid(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > 2048) return false
  return value.startsWith('did:plc:') ? PLC_RE.test(value) : WEB_RE.test(value)
}

export function isValidTid(value: unknown): value is string {
  return typeof value === 'string' && TID_RE.test(value)
}

export function isValidRkey(value: unknown): value is string {
  return typeof value === 'string' && value !== '.' && value !== '..' && RKEY_RE.test(value)
}

export function isValidNsid(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 317 && NSID_RE.test(value)
}

export function isValidHandle(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 253 && HANDLE_RE.test(value)
}

const S32 = '234567abcdefghijklmnopqrstuvwxyz'

/** Microseconds since the epoch encoded in a TID (the top 53 bits after the sign bit). */
export function tidTimestampMs(tid: string): number {
  // 13 characters carry 65 bits: 2 zero bits, 53 bits of microseconds (the first 11 characters) and a
  // 10-bit clock id (the last 2). 53 bits stay exact in a double, so no BigInt on this hot path.
  let micros = 0
  for (let i = 0; i < 11; i++) micros = micros * 32 + S32.indexOf(tid.charAt(i))
  return Math.floor(micros / 1000)
}

/** Encodes a TID for a time in ms (clock id 0): used by tests and generators. */
export function tidFromMs(ms: number, clockId = 0): string {
  return tidFromMicros(Math.floor(ms) * 1000, clockId)
}

/** A TID of a time in microseconds (a safe integer), for callers that pick the sub-millisecond part. */
export function tidFromMicros(micros: number, clockId = 0): string {
  let n = BigInt(Math.floor(micros))
  n = (n << 10n) | BigInt(clockId & 1023)
  let out = ''
  for (let i = 0; i < 13; i++) {
    out = S32.charAt(Number(n & 31n)) + out
    n >>= 5n
  }
  return out
}

export interface AtUri {
  did: string
  collection: string
  rkey: string
}

/** Parses `at://<did>/<collection>/<rkey>` strictly; handles as authority are refused (keys need DIDs). */
export function parseAtUri(value: unknown): AtUri | null {
  if (typeof value !== 'string' || value.length > 8192 || !value.startsWith('at://')) return null
  const parts = value.slice(5).split('/')
  if (parts.length !== 3) return null
  const [did, collection, rkey] = parts as [string, string, string]
  if (!isValidDid(did) || !isValidNsid(collection) || !isValidRkey(rkey)) return null
  return { did, collection, rkey }
}
