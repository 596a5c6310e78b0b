import type { PrivacyEvent } from './privacy.js'
import { isValidDid, isValidRkey, isValidTid, parseAtUri, tidTimestampMs } from './syntax.js'

export const LIKE = 'app.bsky.feed.like'
export const REPOST = 'app.bsky.feed.repost'
export const POST = 'app.bsky.feed.post'

export type InteractionKind = 'like' | 'repost' | 'reply' | 'quote'
export const INTERACTION_KINDS: readonly InteractionKind[] = ['like', 'repost', 'reply', 'quote']

/** What a delete removes: a like, a repost, or a post (which may have been a reply and/or a quote). */
export type RecordType = 'like' | 'repost' | 'post'

/** One operation of a repo commit, as the firehose delivers it (record decoded, if any). */
export interface RepoOp {
  repo: string
  action: string
  collection: string
  rkey: string
  record?: unknown
  /** Commit time in ms since the epoch (the relay's `time`, or receipt time when that is unusable). */
  commitTime: number
}

export interface InteractionCreate {
  type: 'create'
  kind: InteractionKind
  author: string
  subject: string
  rkey: string
  /** Event time in ms: the rkey's TID when plausible, else the commit time. */
  time: number
  /** Characters (code points) of the post text for replies and quotes; 0 for likes and reposts. */
  chars: number
}

export interface InteractionDelete {
  type: 'delete'
  record: RecordType
  author: string
  rkey: string
  time: number
}

export interface IdentityEvent {
  type: 'identity'
  did: string
  /** null when the event carries no (valid) handle: consumers should drop any cached one. */
  handle: string | null
  time: number
}

export interface AccountEvent {
  type: 'account'
  did: string
  active: boolean
  /** e.g. 'takendown', 'deleted', 'deactivated', 'suspended'; null when active. */
  status: string | null
  time: number
}

export type InteractionEvent = InteractionCreate | InteractionDelete
export type StreamEvent = InteractionEvent | IdentityEvent | AccountEvent | PrivacyEvent

export type RejectReason =
  | 'invalid_repo'
  | 'invalid_rkey'
  | 'invalid_record'
  | 'invalid_subject'
  | 'invalid_reply'
  | 'invalid_embed'
  | 'invalid_labels'

export interface OpResult {
  events: InteractionEvent[]
  /** Set when the op was malformed; `events` is then empty. */
  rejected?: RejectReason
  /** Interactions dropped because author and subject are the same account. */
  self: number
}

/** How far a TID may be from the commit time and still be trusted as the event time. */
export const DEFAULT_TID_TOLERANCE_MS = 10 * 60 * 1000

const NONE: OpResult = Object.freeze({ events: [], self: 0 }) as OpResult

function reject(reason: RejectReason): OpResult {
  return { events: [], rejected: reason, self: 0 }
}

/** The event time: the TID in the record key when it is valid and near the commit time, else the commit time. */
export function eventTime(
  rkey: string,
  commitTime: number,
  toleranceMs = DEFAULT_TID_TOLERANCE_MS,
): number {
  if (isValidTid(rkey)) {
    const t = tidTimestampMs(rkey)
    if (Math.abs(t - commitTime) <= toleranceMs) return t
  }
  return commitTime
}

function recordTypeOf(collection: string): RecordType | null {
  if (collection === LIKE) return 'like'
  if (collection === REPOST) return 'repost'
  if (collection === POST) return 'post'
  return null
}

/** True for the collections whose ops can produce interactions; lets a decoder skip everything else early. */
export function isInteractionCollection(collection: string): boolean {
  return recordTypeOf(collection) !== null
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The DID of a `{ uri, cid }` strong ref, or null when it is not a valid AT-URI with a DID authority. */
function strongRefDid(ref: unknown): string | null {
  if (!isObject(ref)) return null
  return parseAtUri(ref.uri)?.did ?? null
}

/** Code points of a text (a surrogate pair is one): the length the index keeps of a reply's or quote's text. */
export function codePoints(text: string): number {
  let n = text.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    // A high surrogate followed by a low one is one character.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--
        i++
      }
    }
  }
  return n
}

/** The quoted record's DID, undefined when the post quotes nothing, null when the quote embed is malformed. */
function quotedDid(embed: unknown): string | null | undefined {
  if (embed === undefined) return undefined
  if (!isObject(embed)) return null
  if (embed.$type === 'app.bsky.embed.record') return strongRefDid(embed.record)
  if (embed.$type === 'app.bsky.embed.recordWithMedia') {
    if (!isObject(embed.record)) return null
    return strongRefDid(embed.record.record)
  }
  return undefined
}

/**
 * One commit op to the interaction events it stands for. Pure: no I/O, no clock.
 * Ops on other collections and plain posts yield nothing; malformed ones yield a reason.
 */
export function interpretOp(op: RepoOp, toleranceMs = DEFAULT_TID_TOLERANCE_MS): OpResult {
  const type = recordTypeOf(op.collection)
  if (type === null) return NONE
  if (!isValidDid(op.repo)) return reject('invalid_repo')
  if (!isValidRkey(op.rkey)) return reject('invalid_rkey')

  if (op.action === 'delete') {
    return {
      events: [
        { type: 'delete', record: type, author: op.repo, rkey: op.rkey, time: op.commitTime },
      ],
      self: 0,
    }
  }
  // Likes, reposts and posts are immutable in practice; an update changes no interaction.
  if (op.action !== 'create') return NONE

  const record = op.record
  if (!isObject(record)) return reject('invalid_record')
  const time = eventTime(op.rkey, op.commitTime, toleranceMs)

  if (type !== 'post') {
    const subject = strongRefDid(record.subject)
    if (subject === null) return reject('invalid_subject')
    if (subject === op.repo) return { events: [], self: 1 }
    return {
      events: [
        { type: 'create', kind: type, author: op.repo, subject, rkey: op.rkey, time, chars: 0 },
      ],
      self: 0,
    }
  }

  let replyTo: string | undefined
  if (record.reply !== undefined) {
    if (!isObject(record.reply)) return reject('invalid_reply')
    const parent = strongRefDid(record.reply.parent)
    if (parent === null) return reject('invalid_reply')
    replyTo = parent
  }
  const quoted = quotedDid(record.embed)
  if (quoted === null) return reject('invalid_embed')
  if (replyTo === undefined && quoted === undefined) return NONE

  if (record.text !== undefined && typeof record.text !== 'string') return reject('invalid_record')
  const chars = typeof record.text === 'string' ? codePoints(record.text) : 0
  const events: InteractionEvent[] = []
  let self = 0
  for (const [kind, subject] of [
    ['reply', replyTo],
    ['quote', quoted],
  ] as const) {
    if (subject === undefined) continue
    if (subject === op.repo) self++
    else events.push({ type: 'create', kind, author: op.repo, subject, rkey: op.rkey, time, chars })
  }
  return { events, self }
}
