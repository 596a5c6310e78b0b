import {
  DEFAULT_TID_TOLERANCE_MS,
  type InteractionKind,
  isValidDid,
  isValidNsid,
  isValidRkey,
  LIKE,
  POST,
  REPOST,
  type RejectReason,
} from '@circles/core'
import { fieldsOf, type InteractionFields } from '@circles/repo-source'

// core's `interpretOp` for the creates of one repo, with the same results (interpret.test.ts holds the
// two side by side), at a backfill's pace: a repo is 100k creates of one author, so the author's DID is
// checked once, a subject's did:plc and its post collection by a loop over the URI (no slice, no regex;
// anything else goes to core's checks), a TID rkey's syntax stands for the rkey's, and no op, result or
// event object is made per record: the caller gets each interaction through `emit`.

export type Emit = (kind: InteractionKind, subject: string, time: number, chars: number) => void

export class CreateInterpreter {
  /** Self-interactions of the last `interpret`. */
  self = 0
  private readonly repoValid: boolean

  constructor(
    private readonly repo: string,
    private readonly toleranceMs = DEFAULT_TID_TOLERANCE_MS,
  ) {
    this.repoValid = isValidDid(repo)
  }

  /**
   * `interpretOp({ repo, action: 'create', collection, rkey, record, commitTime })` of a record given by
   * its fields (`fieldsOf(record)`; null when the record is no object): its events go to `emit` (kind,
   * subject, time, chars), its `self` to this object's, its `rejected` is returned. `tidMs` is the
   * rkey's TID time, NaN when the rkey is not a TID (the caller has it already).
   */
  interpret(
    collection: string,
    rkey: string,
    tidMs: number,
    record: InteractionFields | null,
    commitTime: number,
    emit: Emit,
  ): RejectReason | undefined {
    this.self = 0
    const kind: InteractionKind | null =
      collection === LIKE
        ? 'like'
        : collection === REPOST
          ? 'repost'
          : collection === POST
            ? 'reply'
            : null
    if (kind === null) return undefined
    if (!this.repoValid) return 'invalid_repo'
    // A valid TID is a valid rkey (13 characters of the rkey alphabet).
    if (Number.isNaN(tidMs) && !isValidRkey(rkey)) return 'invalid_rkey'
    if (record === null) return 'invalid_record'
    const time =
      !Number.isNaN(tidMs) && Math.abs(tidMs - commitTime) <= this.toleranceMs ? tidMs : commitTime

    if (kind !== 'reply') {
      const subject = this.uriDid(record.subject)
      if (subject === null) return 'invalid_subject'
      if (subject === this.repo) this.self = 1
      else emit(kind, subject, time, 0)
      return undefined
    }
    let replyTo: string | undefined
    if (record.replyParent !== undefined) {
      const parent = this.uriDid(record.replyParent)
      if (parent === null) return 'invalid_reply'
      replyTo = parent
    }
    const quoted = record.quoted === undefined ? undefined : this.uriDid(record.quoted)
    if (quoted === null) return 'invalid_embed'
    if (replyTo === undefined && quoted === undefined) return undefined
    if (record.textChars === -2) return 'invalid_record'
    const chars = Math.max(record.textChars, 0)
    if (replyTo !== undefined) {
      if (replyTo === this.repo) this.self++
      else emit('reply', replyTo, time, chars)
    }
    if (quoted !== undefined) {
      if (quoted === this.repo) this.self++
      else emit('quote', quoted, time, chars)
    }
    return undefined
  }

  /** core's `parseAtUri(ref.uri)?.did` of a strong ref's uri (null: no ref): `at://` and exactly three parts. */
  private uriDid(uri: string | null): string | null {
    if (uri === null || uri.length > 8192 || !uri.startsWith('at://')) return null
    const a = uri.indexOf('/', 5)
    const b = a < 0 ? -1 : uri.indexOf('/', a + 1)
    if (b < 0 || uri.indexOf('/', b + 1) >= 0) return null
    const did = uri.slice(5, a)
    if (!isPlcAt(uri, 5, a) && !isValidDid(did)) return null
    const post = b - a - 1 === POST.length && uri.startsWith(POST, a + 1)
    if (!post && !isValidNsid(uri.slice(a + 1, b))) return null
    return isValidRkey(uri.slice(b + 1)) ? did : null
  }
}

/** core's did:plc syntax (`did:plc:` and 24 of [a-z2-7]) of `s[from, to)`, without a slice or a regex. */
function isPlcAt(s: string, from: number, to: number): boolean {
  if (to - from !== 32 || !s.startsWith('did:plc:', from)) return false
  for (let i = from + 8; i < to; i++) {
    const c = s.charCodeAt(i)
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x32 && c <= 0x37))) return false
  }
  return true
}

/**
 * The rkey's TID time (core's `tidTimestampMs`), NaN when it is not a TID (core's `isValidTid`): one loop
 * over the 13 characters instead of a regex test and an `indexOf` per character, once per record.
 */
export function tidMsOf(rkey: string): number {
  if (rkey.length !== 13) return Number.NaN
  let micros = 0
  for (let i = 0; i < 13; i++) {
    const c = rkey.charCodeAt(i)
    // base32-sortable: '2'..'7' are 0..5, 'a'..'z' 6..31; the first character is at most 'j' (15).
    const v = c >= 0x61 && c <= 0x7a ? c - 0x5b : c >= 0x32 && c <= 0x37 ? c - 0x32 : -1
    if (v < 0 || (i === 0 && v > 15)) return Number.NaN
    if (i < 11) micros = micros * 32 + v
  }
  return Math.floor(micros / 1000)
}

/** A decoded record's fields for `interpret`; null when it is no object. */
export function recordFields(record: unknown): InteractionFields | null {
  const isObject = typeof record === 'object' && record !== null && !Array.isArray(record)
  return isObject ? fieldsOf(record) : null
}
