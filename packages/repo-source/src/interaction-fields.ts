import { codePoints } from '@circles/core'
import { CID_LENGTH, isRepoCid, keyAfter, latin1 } from './dag-cbor.js'
import { hasHighByte, isoMs, validUtf8 } from './text-bytes.js'

// What a fold of interactions reads of a like, repost or post, straight from the record's DAG-CBOR
// bytes: a whole decode makes an object, nested objects and a string per key and value of 90k records,
// most of them garbage at once (a fifth of a backfill's decode + fold). `readFields` walks the record
// as `decodeRecord` does (the same checks: minimal heads, keys in DAG-CBOR order, no `__proto__`, valid
// UTF-8 without U+FFFD, safe integers, no floats) and keeps only the few values the fold reads; what it
// would not decode the same way (a float, bytes, an odd CID, a CID where a value is read) makes it give
// up, and the caller decodes the record whole and takes `fieldsOf` of it: the two agree by construction
// on everything `readFields` accepts (interaction-fields.test.ts holds them side by side).

/** The values a fold reads of an interaction record, as `fieldsOf` takes them from a decoded one. */
export interface InteractionFields {
  /** `Date.parse(createdAt)` when `createdAt` is a string, else NaN. */
  createdAtMs: number
  /** `subject.uri` when `subject` is an object and its `uri` a string, else null. */
  subject: string | null
  /** No `reply`: undefined; else `reply.parent.uri` (a string) or null when the reply is malformed. */
  replyParent: string | null | undefined
  /**
   * The quoted record's URI (`embed.record.uri`, or `embed.record.record.uri` with media): undefined
   * when the post quotes nothing, null when the quote embed is malformed.
   */
  quoted: string | null | undefined
  /** Code points of `text`; -1 without a text, -2 when it is not a string. */
  textChars: number
}

export interface InteractionRecord extends InteractionFields {
  /** Marks a record handed out as fields (`RepoContents.interactions()`), not as a decoded object. */
  readonly fields: true
  readonly collection: string
  readonly rkey: string
}

const EMBED_RECORD = 'app.bsky.embed.record'
const EMBED_WITH_MEDIA = 'app.bsky.embed.recordWithMedia'

/** `fieldsOf` a decoded record (plain objects, as @atproto/repo decodes it). */
export function fieldsOf(record: unknown): InteractionFields {
  const r = isObject(record) ? record : {}
  const text = r.text
  return {
    createdAtMs: typeof r.createdAt === 'string' ? Date.parse(r.createdAt) : Number.NaN,
    subject: refUri(r.subject),
    replyParent:
      r.reply === undefined ? undefined : isObject(r.reply) ? refUri(r.reply.parent) : null,
    quoted: quotedUri(r.embed),
    textChars: text === undefined ? -1 : typeof text === 'string' ? codePoints(text) : -2,
  }
}

function quotedUri(embed: unknown): string | null | undefined {
  if (embed === undefined) return undefined
  if (!isObject(embed)) return null
  if (embed.$type === EMBED_RECORD) return refUri(embed.record)
  if (embed.$type === EMBED_WITH_MEDIA) {
    return isObject(embed.record) ? refUri(embed.record.record) : null
  }
  return undefined
}

function refUri(ref: unknown): string | null {
  return isObject(ref) && typeof ref.uri === 'string' ? ref.uri : null
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// --- from the bytes ---------------------------------------------------------------------------------

/** Thrown (one object, never built per record) when the record needs the whole decode. */
const GIVE_UP = new Error('generic decode needed')

let buf: Uint8Array = new Uint8Array(0)
let pos = 0
let limit = 0
let major = 0

/**
 * Reads the fields of the record `bytes[at, end)` into `out` (all of them: a field the record lacks is
 * set as `fieldsOf` sets it); false when it needs the whole decode (`out` is then half written).
 */
export function readFields(
  bytes: Uint8Array,
  at: number,
  end: number,
  out: InteractionFields,
): boolean {
  buf = bytes
  pos = at
  limit = end
  out.createdAtMs = Number.NaN
  out.subject = null
  out.replyParent = undefined
  out.quoted = undefined
  out.textChars = -1
  try {
    const n = head()
    if (major !== 5) return false
    const slots = new MapKeys()
    for (let i = 0; i < n; i++) {
      const k = slots.next()
      if (k === K_CREATED_AT) out.createdAtMs = timeOrSkip()
      else if (k === K_TEXT) out.textChars = textCharsOrSkip()
      else if (k === K_SUBJECT) out.subject = ref(1)
      else if (k === K_REPLY) out.replyParent = reply()
      else if (k === K_EMBED) out.quoted = embed()
      else skip(1)
    }
    return pos === limit
  } catch (err) {
    if (err === GIVE_UP) return false
    throw err
  }
}

// Keys the reader looks for, by a small number (0: any other key).
const K_OTHER = 0
const K_CREATED_AT = 1
const K_TEXT = 2
const K_SUBJECT = 3
const K_REPLY = 4
const K_EMBED = 5
const K_URI = 6
const K_PARENT = 7
const K_TYPE = 8
const K_RECORD = 9
const KEYS: [string, number][] = [
  ['createdAt', K_CREATED_AT],
  ['text', K_TEXT],
  ['subject', K_SUBJECT],
  ['reply', K_REPLY],
  ['embed', K_EMBED],
  ['uri', K_URI],
  ['parent', K_PARENT],
  ['$type', K_TYPE],
  ['record', K_RECORD],
]
const KEY_BYTES = KEYS.map(([k, n]) => [new TextEncoder().encode(k), n] as const)

/** A map's keys one by one: checked in DAG-CBOR order (hence never repeated), named by number. */
class MapKeys {
  private previousAt = 0
  private previousLen = -1

  next(): number {
    const len = head()
    if (major !== 3) giveUp()
    const at = pos
    pos += len
    if (pos > limit) giveUp()
    if (!keyAfter(buf, this.previousAt, this.previousLen, at, len)) giveUp()
    this.previousAt = at
    this.previousLen = len
    for (const [bytes, n] of KEY_BYTES) if (equals(at, len, bytes)) return n
    if (len === 9 && equals(at, len, PROTO)) giveUp()
    if (hasHighByte(buf, at, len) && !validUtf8(buf, at, len)) giveUp()
    return K_OTHER
  }
}

const PROTO = new TextEncoder().encode('__proto__')

function equals(at: number, len: number, bytes: Uint8Array): boolean {
  if (len !== bytes.length) return false
  for (let i = 0; i < len; i++) if (buf[at + i] !== bytes[i]) return false
  return true
}

function giveUp(): never {
  throw GIVE_UP
}

/** An item head, as `decodeRecord` reads it: a non-minimal one or one past the input gives up. */
function head(): number {
  if (pos >= limit) giveUp()
  const b = buf[pos++] as number
  major = b >> 5
  const info = b & 0x1f
  if (info < 24) return info
  let n: number
  if (info === 24) {
    n = buf[pos] as number
    pos += 1
    if (n < 24) giveUp()
  } else if (info === 25) {
    n = ((buf[pos] as number) << 8) | (buf[pos + 1] as number)
    pos += 2
    if (n <= 0xff) giveUp()
  } else if (info === 26) {
    n = u32(pos)
    pos += 4
    if (n <= 0xffff) giveUp()
  } else if (info === 27) {
    n = u32(pos) * 0x100000000 + u32(pos + 4)
    pos += 8
    if (n <= 0xffffffff) giveUp()
  } else {
    return giveUp()
  }
  if (pos > limit) giveUp()
  return n
}

function u32(at: number): number {
  return (
    (buf[at] as number) * 0x1000000 +
    (((buf[at + 1] as number) << 16) | ((buf[at + 2] as number) << 8) | (buf[at + 3] as number))
  )
}

/** Steps over one item, checking it as `decodeRecord` would decode it (or as lex-cbor, for a CID). */
function skip(depth: number): void {
  if (depth > 32) giveUp()
  const arg = head()
  switch (major) {
    case 0:
      if (arg > Number.MAX_SAFE_INTEGER) giveUp()
      return
    case 1:
      if (arg >= Number.MAX_SAFE_INTEGER) giveUp()
      return
    case 3:
      textAt(arg)
      return
    case 4:
      if (arg > limit - pos) giveUp()
      for (let i = 0; i < arg; i++) skip(depth + 1)
      return
    case 5: {
      const keys = new MapKeys()
      for (let i = 0; i < arg; i++) {
        keys.next()
        skip(depth + 1)
      }
      return
    }
    case 6:
      cid(arg)
      return
    case 7:
      if (arg < 20 || arg > 22) giveUp()
      return
    default:
      giveUp()
  }
}

/**
 * A tag-42 link to a repo CID (CIDv1, dag-cbor or raw, sha2-256), such as an image's blob ref: a record
 * holding one goes to lex-cbor in the whole decode, which decodes such a link without fail.
 */
function cid(tag: number): void {
  if (tag !== 42) giveUp()
  const len = head()
  if (major !== 2 || len !== CID_LENGTH + 1 || buf[pos] !== 0) giveUp()
  if (pos + len > limit || !isRepoCid(buf, pos + 1)) giveUp()
  pos += len
}

/** Whether the last text `textAt` read held a byte past ASCII. */
let textHigh = false

/** A text of `len` bytes at `pos`, checked; returns its offset. */
function textAt(len: number): number {
  const at = pos
  pos += len
  if (pos > limit) giveUp()
  textHigh = hasHighByte(buf, at, len)
  if (textHigh && !validUtf8(buf, at, len)) giveUp()
  return at
}

/** A value read as a string: the string when it is text, undefined (stepped over) when not; a CID gives up. */
function textOrSkip(depth: number): string | undefined {
  const start = pos
  const len = head()
  if (major === 3) {
    const at = textAt(len)
    return textHigh ? utf8Slice.call(buf, at, at + len) : latin1(buf, at, len)
  }
  if (major === 6) giveUp()
  pos = start
  skip(depth)
  return undefined
}

/**
 * `Date.parse` of a text value (NaN when the value is no text). The form nearly every client writes,
 * `YYYY-MM-DDTHH:MM:SS.sssZ` with its fields in range, is read from the bytes; any other goes to
 * `Date.parse` (which also takes day 31 of a short month or hour 24, rolled over).
 */
function timeOrSkip(): number {
  const start = pos
  const len = head()
  if (major === 3 && len === 24 && pos + 24 <= limit) {
    const t = isoMs(buf, pos)
    if (!Number.isNaN(t)) {
      pos += 24
      return t
    }
  }
  pos = start
  const text = textOrSkip(1)
  return text === undefined ? Number.NaN : Date.parse(text)
}

function textCharsOrSkip(): number {
  const start = pos
  const len = head()
  if (major === 3) {
    const at = pos
    pos += len
    if (pos > limit) giveUp()
    // A code point per byte that does not continue one (in valid UTF-8, checked when there is any).
    let n = 0
    let high = false
    for (let i = at; i < at + len; i++) {
      const b = buf[i] as number
      if (b < 0x80) n++
      else {
        high = true
        if ((b & 0xc0) !== 0x80) n++
      }
    }
    if (high && !validUtf8(buf, at, len)) giveUp()
    return n
  }
  if (major === 6) giveUp()
  pos = start
  skip(1)
  return -2
}

/** Runs `each(key)` for every key of a map value, or returns false (stepped over) when it is not one. */
function mapOrSkip(depth: number, each: (key: number) => void): boolean {
  if (depth > 32) giveUp()
  const start = pos
  const n = head()
  if (major === 6) giveUp()
  if (major !== 5) {
    pos = start
    skip(depth)
    return false
  }
  const keys = new MapKeys()
  for (let i = 0; i < n; i++) each(keys.next())
  return true
}

/** A strong ref's `uri`: the string, or null when the value is no object or its uri no string. */
function ref(depth: number): string | null {
  let uri: string | null = null
  mapOrSkip(depth, (k) => {
    if (k === K_URI) uri = textOrSkip(depth + 1) ?? null
    else skip(depth + 1)
  })
  return uri
}

function reply(): string | null {
  let parent: string | null = null
  mapOrSkip(1, (k) => {
    if (k === K_PARENT) parent = ref(2)
    else skip(2)
  })
  return parent
}

function embed(): string | null | undefined {
  // `$type` comes before `record` (DAG-CBOR order: shorter keys first), so it is known when `record` is.
  let type = ''
  let quoted: string | null | undefined
  const isMap = mapOrSkip(1, (k) => {
    if (k === K_TYPE) {
      type = textOrSkip(2) ?? ''
      if (type === EMBED_RECORD || type === EMBED_WITH_MEDIA) quoted = null
    } else if (k === K_RECORD && type === EMBED_RECORD) quoted = ref(2)
    else if (k === K_RECORD && type === EMBED_WITH_MEDIA) {
      quoted = null
      mapOrSkip(2, (k2) => {
        if (k2 === K_RECORD) quoted = ref(3)
        else skip(3)
      })
    } else skip(2)
  })
  return isMap ? quoted : null
}

const utf8Slice = (
  Buffer.prototype as unknown as {
    utf8Slice: (this: Uint8Array, start: number, end: number) => string
  }
).utf8Slice
