import { CidLinkWrapper, decodeFirst } from '@atcute/cbor'
import { BLOCK, PROFILE } from '@circles/core'
import {
  decodeRecord,
  type ScannedCommit,
  type ScannedHeader,
  type ScannedOp,
  scanCommitBody,
  scanHeader,
  utf8,
} from './cbor-scan.js'
import {
  accountResult,
  addOp,
  type DecodeOptions,
  emptyResult,
  errorResult,
  type FrameResult,
  identityResult,
  infoResult,
  isRecord,
  malformed,
  NO_OPTIONS,
  type PlainOp,
  seqOf,
  skip,
  timeOf,
} from './frame-result.js'

// The fast path. Skyware decodes every block of every commit's CAR, MST nodes included, and most of its
// time goes there (FIELD-NOTES 3). Here a #commit body is walked for the few fields that matter (see
// cbor-scan.ts), ops of other collections are dropped by their path bytes before the CAR is touched, and
// the CAR's block index is scanned by comparing raw CID bytes, so only the blocks of kept create ops are
// CBOR-decoded. Mapping to events
// goes through the same `addOp` as the stock path, which the corpus test relies on.

/** Block bytes by op index; `undefined` when the CAR does not hold the op's CID. */
type Found = (Uint8Array | undefined)[]

let varintEnd = 0

/** Reads an unsigned varint at `pos`; leaves the position after it in `varintEnd` (no tuple to allocate). */
function readVarint(buf: Uint8Array, pos: number): number {
  let value = 0
  let shift = 0
  for (let i = pos; i < buf.length && i < pos + 8; i++) {
    const byte = buf[i] as number
    value += (byte & 0x7f) * 2 ** shift
    if ((byte & 0x80) === 0) {
      varintEnd = i + 1
      return value
    }
    shift += 7
  }
  throw new RangeError('bad varint in CAR')
}

/** Length of the CID at `pos` (v1: version, codec, hash code and digest length as varints; v0: 34). */
function cidLength(buf: Uint8Array, pos: number): number {
  // The usual case: v1, dag-cbor or raw, sha-256.
  if (
    buf[pos] === 1 &&
    buf[pos + 2] === 0x12 &&
    buf[pos + 3] === 0x20 &&
    (buf[pos + 1] as number) < 0x80
  ) {
    return 36
  }
  if (buf[pos] === 0x12 && buf[pos + 1] === 0x20) return 34
  if (buf[pos] !== 1) throw new RangeError('unsupported CID in CAR')
  readVarint(buf, pos + 1) // codec
  readVarint(buf, varintEnd) // hash function
  const digestLength = readVarint(buf, varintEnd)
  return varintEnd + digestLength - pos
}

function cidEquals(buf: Uint8Array, pos: number, length: number, cid: Uint8Array): boolean {
  if (cid.length !== length) return false
  // The digest's first bytes differ between any two blocks: compare from there, the prefix last.
  for (let i = length - 1; i >= 0; i--) if (buf[pos + i] !== cid[i]) return false
  return true
}

/**
 * Finds the blocks of `wanted` CIDs in a CARv1 without decoding any block. Stops as soon as every wanted
 * CID is found. Throws a RangeError when the CAR is truncated or malformed.
 */
export function findBlocks(car: Uint8Array, wanted: readonly Uint8Array[]): Found {
  const found: Found = new Array(wanted.length)
  let remaining = wanted.length
  const headerLength = readVarint(car, 0)
  let pos = varintEnd + headerLength
  while (pos < car.length && remaining > 0) {
    const entryLength = readVarint(car, pos)
    const start = varintEnd
    const end = start + entryLength
    if (end > car.length) throw new RangeError('truncated CAR block')
    const length = cidLength(car, start)
    if (length > entryLength) throw new RangeError('CAR block shorter than its CID')
    for (let j = 0; j < wanted.length; j++) {
      if (found[j] === undefined && cidEquals(car, start, length, wanted[j] as Uint8Array)) {
        found[j] = car.subarray(start + length, end)
        remaining--
      }
    }
    pos = end
  }
  return found
}

const encoder = new TextEncoder()
const COLLECTIONS = [
  'app.bsky.feed.like',
  'app.bsky.feed.repost',
  'app.bsky.feed.post',
  // opt-outs: a block of the service's account, a profile's self-labels
  BLOCK,
  PROFILE,
].map((c) => encoder.encode(c))
const PROFILE_PREFIX = encoder.encode(`${PROFILE}/`)

const POST_PREFIX = encoder.encode('app.bsky.feed.post/')

function hasPrefix(path: Uint8Array, prefix: Uint8Array): boolean {
  if (path.length < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (path[i] !== prefix[i]) return false
  return true
}

function isPost(path: Uint8Array): boolean {
  return hasPrefix(path, POST_PREFIX)
}

/** Is the op's path in the profile collection? (An update of a profile can change its labels.) */
function isProfile(path: Uint8Array): boolean {
  return hasPrefix(path, PROFILE_PREFIX)
}

/** Is the path's collection (the bytes before its first '/') one that can yield events? */
function keptCollection(op: ScannedOp): boolean {
  const path = op.path as Uint8Array
  for (const c of COLLECTIONS) {
    if (c.length !== op.slash) continue
    let same = true
    for (let i = 0; i < c.length; i++) {
      if (path[i] !== c[i]) {
        same = false
        break
      }
    }
    if (same) return true
  }
  return false
}

/** A kept op; `drop` marks one whose block is missing or unreadable (the stock client drops it too). */
interface KeptOp extends PlainOp {
  drop: boolean
  profile: boolean
}

function commitResult(body: ScannedCommit, commitTime: number, opts: DecodeOptions): FrameResult {
  const { seq, ops, blocks } = body
  if (seq === null || ops === null) return malformed(seq)
  const result = emptyResult('commit', seq)
  // Like the stock client: a commit without blocks carries no usable ops (deletes included).
  if (blocks === null || blocks.length === 0) return result

  const kept: KeptOp[] = []
  let wantedOps: KeptOp[] | null = null
  let wantedCids: Uint8Array[] | null = null
  for (const op of ops) {
    if (op.path === null) {
      skip(result, 'malformed_frame')
      continue
    }
    if (!keptCollection(op)) continue
    const k: KeptOp = {
      action: op.action,
      path: utf8(op.path, 0, op.path.length),
      drop: false,
      profile: isProfile(op.path),
    }
    if (op.action === 'create' || op.action === 'update') {
      // Stock drops a create/update whose CID is missing or whose block is not in the CAR.
      if (op.cid === null) continue
      // The bot reads its mentions' CIDs (reply refs); text only for posts, only while a bot is set.
      if (opts.botDid && op.action === 'create' && isPost(op.path)) {
        k.cid = new CidLinkWrapper(op.cid).$link
      }
      wantedOps ??= []
      wantedCids ??= []
      wantedOps.push(k)
      wantedCids.push(op.cid)
    }
    kept.push(k)
  }
  if (kept.length === 0) return result

  if (wantedOps !== null && wantedCids !== null) {
    let found: Found
    try {
      found = findBlocks(blocks, wantedCids)
    } catch {
      skip(result, 'malformed_car')
      return result
    }
    for (let j = 0; j < wantedOps.length; j++) {
      const op = wantedOps[j] as KeptOp
      const bytes = found[j]
      if (bytes === undefined) {
        op.drop = true
        continue
      }
      // An update changes no interaction (core ignores it), so its block need not be decoded; a
      // profile's update may add or remove its opt-out label.
      if (op.action !== 'create' && !op.profile) continue
      try {
        op.record = decodeRecord(bytes, op.cid !== undefined)
      } catch {
        skip(result, 'malformed_record')
        op.drop = true
        continue
      }
      if (!op.record) op.drop = true
    }
  }
  for (const op of kept) if (!op.drop) addOp(result, body.repo, commitTime, op, opts)
  return result
}

/**
 * Decodes one raw firehose frame (a websocket binary message) into events. Never throws: anything
 * malformed is reported in `skipped`. `now` is the receipt time, used when the frame's `time` is unusable.
 */
export function decodeFrame(
  frame: Uint8Array,
  now: number,
  opts: DecodeOptions = NO_OPTIONS,
): FrameResult {
  let header: ScannedHeader
  try {
    header = scanHeader(frame)
  } catch {
    return malformed()
  }
  if (header.op === 1 && header.t === '#commit') {
    let body: ScannedCommit
    try {
      body = scanCommitBody(frame, header.end)
    } catch {
      return malformed()
    }
    const time = timeOf(body.time, now)
    const result = commitResult(body, time, opts)
    if (result.seq !== null) result.time = time
    return result
  }
  // Every other frame is rare: the generic decoder does.
  let body: unknown
  try {
    const [b, remainder] = decodeFirst(frame.subarray(header.end))
    if (remainder.length > 0) return malformed()
    body = b
  } catch {
    return malformed()
  }
  if (header.op === -1) return errorResult(body)
  if (header.op !== 1 || header.t === null || !isRecord(body)) return malformed()
  const result = byType(header.t, body, now)
  // The relay's time of the frame, for the "how far behind the relay" gauge.
  if (result.seq !== null) result.time = timeOf(body.time, now)
  return result
}

function byType(t: string, body: Record<string, unknown>, now: number): FrameResult {
  switch (t) {
    case '#identity':
      return identityResult(body, now)
    case '#account':
      return accountResult(body, now)
    case '#sync':
      return emptyResult('sync', seqOf(body.seq))
    case '#info':
      return infoResult(body)
    default:
      return emptyResult('unknown', seqOf(body.seq))
  }
}
