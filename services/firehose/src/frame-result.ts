import {
  interpretOp,
  interpretPrivacyOp,
  isInteractionCollection,
  isPrivacyCollection,
  type MentionEvent,
  mentionOf,
  type RejectReason,
  type StreamEvent,
  toAccountEvent,
  toIdentityEvent,
} from '@circles/core'

/** Why a frame, op or record was skipped: core's reasons plus the decoder's own. */
export type SkipReason =
  | RejectReason
  | 'malformed_frame'
  | 'malformed_car'
  | 'malformed_record'
  | 'invalid_identity'
  | 'invalid_account'

export type FrameKind =
  | 'commit'
  | 'identity'
  | 'account'
  | 'sync'
  | 'info'
  | 'error'
  | 'unknown'
  | 'malformed'

/** An error frame (header `op: -1`), e.g. FutureCursor or ConsumerTooSlow. */
export interface RelayErrorFrame {
  error: string
  message: string | null
}

/** What one firehose frame contributes: events, the seq it moves the cursor to, and what was skipped. */
export interface FrameResult {
  kind: FrameKind
  /** The frame's seq; null for frames without one (#info, error frames, malformed frames). */
  seq: number | null
  events: StreamEvent[]
  /** Posts mentioning the bot (BOT_DID) or written by it (core/mention.ts); null when none (the usual case). */
  mentions: MentionEvent[] | null
  /** Interaction create events among `events`. */
  interactions: number
  /** Interactions dropped because author and subject are the same account. */
  self: number
  /** One entry per skipped op/record/frame (usually null: allocation only when something is wrong). */
  skipped: SkipReason[] | null
  /** The frame's `time` in ms (receipt time when unusable); set by the fast decoder on frames with a seq. */
  time?: number
  /** Set on error frames. */
  error?: RelayErrorFrame
  /** Set on #info frames (e.g. OutdatedCursor). */
  info?: { name: string; message: string | null }
}

export function emptyResult(kind: FrameKind, seq: number | null): FrameResult {
  return { kind, seq, events: [], mentions: null, interactions: 0, self: 0, skipped: null }
}

export function malformed(seq: number | null = null): FrameResult {
  return { ...emptyResult('malformed', seq), skipped: ['malformed_frame'] }
}

export function skip(result: FrameResult, reason: SkipReason): void {
  if (result.skipped === null) result.skipped = [reason]
  else result.skipped.push(reason)
}

/** A valid non-negative integer seq, else null. */
export function seqOf(value: unknown): number | null {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : null
}

/** The relay's `time` in ms, or `fallback` (receipt time) when missing or unparsable. */
export function timeOf(value: unknown, fallback: number): number {
  if (typeof value !== 'string') return fallback
  const t = isoUtcMs(value) ?? Date.parse(value)
  return Number.isFinite(t) ? t : fallback
}

function digits(s: string, at: number, n: number): number {
  let v = 0
  for (let i = at; i < at + n; i++) {
    const d = s.charCodeAt(i) - 48
    if (d < 0 || d > 9) return -1
    v = v * 10 + d
  }
  return v
}

/**
 * `YYYY-MM-DDTHH:MM:SS[.fff...]Z`, the relay's own format, in ms: Date.parse gives the same answer but
 * costs more per frame. Returns null for any other shape (and for days past 28, which Date.UTC would roll
 * over where Date.parse rejects), so Date.parse decides those.
 */
function isoUtcMs(s: string): number | null {
  const n = s.length
  if (n < 20 || s.charCodeAt(n - 1) !== 90 /* Z */ || s[4] !== '-' || s[7] !== '-') return null
  if (s[10] !== 'T' || s[13] !== ':' || s[16] !== ':') return null
  const year = digits(s, 0, 4)
  const month = digits(s, 5, 2)
  const day = digits(s, 8, 2)
  const hour = digits(s, 11, 2)
  const minute = digits(s, 14, 2)
  const second = digits(s, 17, 2)
  if (year < 1000 || month < 1 || month > 12 || day < 1 || day > 28) return null
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return null
  let ms = 0
  if (n > 20) {
    // Fraction digits: Date.parse keeps the first three (truncating, not rounding).
    const places = n - 21
    if (s[19] !== '.' || places < 1 || places > 9 || digits(s, 20, places) < 0) return null
    ms = digits(s, 20, Math.min(3, places)) * (places >= 3 ? 1 : places === 2 ? 10 : 100)
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, ms)
}

export interface DecodeOptions {
  /** The service's own account (SERVICE_DID): a block of it is an opt-out. null: blocks are not read. */
  serviceDid: string | null
  /** The circles bot's account (BOT_DID): posts that mention it, and its own, go to the bot. null: none. */
  botDid?: string | null
}

export const NO_OPTIONS: DecodeOptions = Object.freeze({ serviceDid: null, botDid: null })

/** A commit op reduced to what the interaction model needs; the record is already decoded (or absent). */
export interface PlainOp {
  action: unknown
  path: unknown
  record?: unknown
  /** The record's CID (text), given for post creates while a bot is configured (`DecodeOptions.botDid`). */
  cid?: string
}

/** Splits `collection/rkey`; a path without a slash gets an empty rkey, which core rejects. */
export function splitPath(path: string): [string, string] {
  const i = path.indexOf('/')
  return i < 0 ? [path, ''] : [path.slice(0, i), path.slice(i + 1)]
}

const POST = 'app.bsky.feed.post'

/** Adds one op's events to `result`. Shared by the fast and the stock decoder so both map identically. */
export function addOp(
  result: FrameResult,
  repo: unknown,
  commitTime: number,
  op: PlainOp,
  opts: DecodeOptions = NO_OPTIONS,
): void {
  if (typeof op.path !== 'string' || typeof op.action !== 'string') {
    skip(result, 'malformed_frame')
    return
  }
  const [collection, rkey] = splitPath(op.path)
  // core validates the repo DID; a non-string one is rejected there like any invalid DID.
  const repoOp = {
    repo: typeof repo === 'string' ? repo : '',
    action: op.action,
    collection,
    rkey,
    record: op.record,
    commitTime,
  }
  if (isPrivacyCollection(collection)) {
    const p = interpretPrivacyOp(repoOp, opts.serviceDid)
    if (p.rejected !== undefined) skip(result, p.rejected)
    else if (p.event !== null) result.events.push(p.event)
    return
  }
  if (!isInteractionCollection(collection)) return
  const r = interpretOp(repoOp)
  if (opts.botDid && op.cid !== undefined && op.action === 'create' && collection === POST) {
    const post = { author: repoOp.repo, rkey, cid: op.cid, record: op.record, time: commitTime }
    const m = mentionOf(post, opts.botDid)
    if (m !== null) {
      result.mentions ??= []
      result.mentions.push(m)
    }
  }
  if (r.rejected !== undefined) skip(result, r.rejected)
  result.self += r.self
  for (const e of r.events) {
    result.events.push(e)
    if (e.type === 'create') result.interactions++
  }
}

export function identityResult(body: Record<string, unknown>, now: number): FrameResult {
  const result = emptyResult('identity', seqOf(body.seq))
  const event = toIdentityEvent(body.did, body.handle, timeOf(body.time, now))
  if (event === null) skip(result, 'invalid_identity')
  else result.events.push(event)
  return result
}

export function accountResult(body: Record<string, unknown>, now: number): FrameResult {
  const result = emptyResult('account', seqOf(body.seq))
  const event = toAccountEvent(body.did, body.active, body.status, timeOf(body.time, now))
  if (event === null) skip(result, 'invalid_account')
  else result.events.push(event)
  return result
}

export function errorResult(body: unknown): FrameResult {
  const b = isRecord(body) ? body : {}
  return {
    ...emptyResult('error', null),
    error: {
      error: typeof b.error === 'string' ? b.error : 'unknown',
      message: typeof b.message === 'string' ? b.message : null,
    },
  }
}

export function infoResult(body: Record<string, unknown>): FrameResult {
  return {
    ...emptyResult('info', null),
    info: {
      name: typeof body.name === 'string' ? body.name : 'unknown',
      message: typeof body.message === 'string' ? body.message : null,
    },
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
