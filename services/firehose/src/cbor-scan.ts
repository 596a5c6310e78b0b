import { decodeFirst } from '@atcute/cbor'
// A tiny DAG-CBOR walker for the one hot shape: the body of a #commit frame. A generic decoder builds
// every value (the commit CID, rev, since, blobs, each op's prev CID, strings for every path); this reads
// only seq, repo, time, blocks and the ops' action/path/cid, and steps over everything else without
// allocating. Paths stay bytes until an op turns out to be a like, repost or post. Anything unexpected
// throws a CborScanError; the caller counts the frame as malformed.

export class CborScanError extends Error {
  override name = 'CborScanError'
}

/** One op of a commit, with its path as bytes and its CID as raw bytes (no multibase prefix). */
export interface ScannedOp {
  action: 'create' | 'update' | 'delete' | 'other'
  /** Path bytes, or null when the path is not a text string. */
  path: Uint8Array | null
  /** Index of the first '/' in `path` (its length when there is none). */
  slash: number
  cid: Uint8Array | null
}

export interface ScannedCommit {
  seq: number | null
  /** The repo DID, or null when not a text string. */
  repo: string | null
  time: string | null
  blocks: Uint8Array | null
  ops: ScannedOp[] | null
}

export interface ScannedHeader {
  op: number | null
  t: string | null
  /** Offset of the body in the frame. */
  end: number
}

let buf: Uint8Array = new Uint8Array(0)
let pos = 0
let major = 0

/** The major type of the last head read (a function, so TypeScript does not narrow it across reads). */
function kind(): number {
  return major
}

function fail(what: string): never {
  throw new CborScanError(what)
}

/** Reads an item head: sets `major`, returns the argument (length, value or tag). */
function head(): number {
  if (pos >= buf.length) fail('unexpected end of input')
  const b = buf[pos++] as number
  major = b >> 5
  const info = b & 0x1f
  if (info < 24) return info
  let n: number
  switch (info) {
    case 24:
      n = buf[pos] as number
      pos += 1
      break
    case 25:
      n = ((buf[pos] as number) << 8) | (buf[pos + 1] as number)
      pos += 2
      break
    case 26:
      n =
        (buf[pos] as number) * 0x1000000 +
        (((buf[pos + 1] as number) << 16) |
          ((buf[pos + 2] as number) << 8) |
          (buf[pos + 3] as number))
      pos += 4
      break
    case 27: {
      const hi =
        (buf[pos] as number) * 0x1000000 +
        (((buf[pos + 1] as number) << 16) |
          ((buf[pos + 2] as number) << 8) |
          (buf[pos + 3] as number))
      const lo =
        (buf[pos + 4] as number) * 0x1000000 +
        (((buf[pos + 5] as number) << 16) |
          ((buf[pos + 6] as number) << 8) |
          (buf[pos + 7] as number))
      n = hi * 0x100000000 + lo
      pos += 8
      break
    }
    default:
      return fail('indefinite length or reserved encoding')
  }
  if (pos > buf.length) fail('unexpected end of input')
  return n
}

function skip(depth = 0): void {
  if (depth > 64) fail('nesting too deep')
  const arg = head()
  switch (major) {
    case 2:
    case 3:
      pos += arg
      if (pos > buf.length) fail('unexpected end of input')
      return
    case 4:
      for (let i = 0; i < arg; i++) skip(depth + 1)
      return
    case 5:
      for (let i = 0; i < 2 * arg; i++) skip(depth + 1)
      return
    case 6:
      skip(depth + 1)
      return
    default:
      // 0, 1: the integer is the argument; 7: simple values and floats are all in the head.
      return
  }
}

const decoder = new TextDecoder()
// Node's native latin1 slice, which equals UTF-8 on ASCII bytes and is much faster than building the
// string in JS; absent outside Node, where TextDecoder does.
const latin1Slice = (
  Buffer.prototype as unknown as {
    latin1Slice?: (this: Uint8Array, s: number, e: number) => string
  }
).latin1Slice

/** A string from `len` bytes at `at`; plain ASCII (every key, DID, path and time) takes the fast way. */
export function utf8(bytes: Uint8Array, at: number, len: number): string {
  if (latin1Slice !== undefined && len <= 256) {
    let ascii = true
    for (let i = at; i < at + len; i++) {
      if ((bytes[i] as number) >= 0x80) {
        ascii = false
        break
      }
    }
    if (ascii) return latin1Slice.call(bytes, at, at + len)
  }
  return decoder.decode(bytes.subarray(at, at + len))
}

/** Is the text at `at` (of `len` bytes) equal to the ASCII `s`? */
function is(at: number, len: number, s: string): boolean {
  if (len !== s.length) return false
  for (let i = 0; i < len; i++) if (buf[at + i] !== s.charCodeAt(i)) return false
  return true
}

/** Reads a text string item; returns null (having skipped it) when the item is something else. */
function textOrNull(): string | null {
  const start = pos
  const len = head()
  if (kind() !== 3) {
    pos = start
    skip()
    return null
  }
  const at = pos
  pos += len
  if (pos > buf.length) fail('unexpected end of input')
  return utf8(buf, at, len)
}

/** Reads a map key (DAG-CBOR keys are text); returns its offset and length. */
function key(): [number, number] {
  const len = keyLength()
  return [pos - len, len]
}

/** Reads a map key and returns its length; the key's bytes end at `pos`. */
function keyLength(): number {
  const len = head()
  if (kind() !== 3) fail('map key is not a string')
  pos += len
  if (pos > buf.length) fail('unexpected end of input')
  return len
}

function uint(): number | null {
  const start = pos
  const n = head()
  if (kind() !== 0) {
    pos = start
    skip()
    return null
  }
  return n
}

/** A CID link (tag 42 over bytes with a 0x00 prefix) as raw CID bytes; null for anything else. */
function cidOrNull(): Uint8Array | null {
  const start = pos
  const tag = head()
  if (kind() !== 6 || tag !== 42) {
    pos = start
    skip()
    return null
  }
  const len = head()
  if (kind() !== 2 || len < 2 || buf[pos] !== 0) fail('malformed CID link')
  const cid = buf.subarray(pos + 1, pos + len)
  pos += len
  if (pos > buf.length) fail('unexpected end of input')
  return cid
}

function scanOp(): ScannedOp {
  const n = head()
  if (kind() !== 5) fail('op is not a map')
  const op: ScannedOp = { action: 'other', path: null, slash: 0, cid: null }
  for (let i = 0; i < n; i++) {
    const len = keyLength()
    const at = pos - len
    // Dispatch on length and first byte: one comparison per key instead of one per known name.
    if (len === 6 && buf[at] === 0x61 && is(at, len, 'action')) {
      const s = pos
      const l = head()
      if (kind() === 3) {
        const a = pos
        pos += l
        if (is(a, l, 'create')) op.action = 'create'
        else if (is(a, l, 'delete')) op.action = 'delete'
        else if (is(a, l, 'update')) op.action = 'update'
      } else {
        pos = s
        skip()
      }
    } else if (len === 4 && buf[at] === 0x70 && is(at, len, 'path')) {
      const s = pos
      const l = head()
      if (kind() === 3) {
        op.path = buf.subarray(pos, pos + l)
        let slash = l
        for (let k = 0; k < l; k++) {
          if (buf[pos + k] === 0x2f) {
            slash = k
            break
          }
        }
        op.slash = slash
        pos += l
      } else {
        pos = s
        skip()
      }
    } else if (len === 3 && buf[at] === 0x63 && is(at, len, 'cid')) op.cid = cidOrNull()
    else skip()
  }
  return op
}

/** Reads a frame header (`{op, t}`) from the start of `frame`. */
export function scanHeader(frame: Uint8Array): ScannedHeader {
  buf = frame
  pos = 0
  const n = head()
  if (kind() !== 5) fail('header is not a map')
  const out: ScannedHeader = { op: null, t: null, end: 0 }
  for (let i = 0; i < n; i++) {
    const [at, len] = key()
    if (is(at, len, 'op')) {
      const s = pos
      const v = head()
      if (kind() === 0) out.op = v
      else if (kind() === 1) out.op = -1 - v
      else {
        pos = s
        skip()
      }
    } else if (is(at, len, 't')) out.t = textOrNull()
    else skip()
  }
  out.end = pos
  return out
}

/** Reads a #commit body starting at `offset`; it must end exactly at the end of `frame`. */
export function scanCommitBody(frame: Uint8Array, offset: number): ScannedCommit {
  buf = frame
  pos = offset
  const n = head()
  if (kind() !== 5) fail('body is not a map')
  const out: ScannedCommit = { seq: null, repo: null, time: null, blocks: null, ops: null }
  for (let i = 0; i < n; i++) {
    const len = keyLength()
    const at = pos - len
    const first = buf[at]
    if (len === 3 && first === 0x73 && is(at, len, 'seq')) out.seq = uint()
    else if (len === 4 && first === 0x72 && is(at, len, 'repo')) out.repo = textOrNull()
    else if (len === 4 && first === 0x74 && is(at, len, 'time')) out.time = textOrNull()
    else if (len === 6 && first === 0x62 && is(at, len, 'blocks')) {
      const s = pos
      const l = head()
      if (kind() === 2) {
        out.blocks = buf.subarray(pos, pos + l)
        pos += l
        if (pos > buf.length) fail('unexpected end of input')
      } else {
        pos = s
        skip()
      }
    } else if (len === 3 && first === 0x6f && is(at, len, 'ops')) {
      const s = pos
      const l = head()
      if (kind() === 4) {
        const ops: ScannedOp[] = []
        for (let k = 0; k < l; k++) ops.push(scanOp())
        out.ops = ops
      } else {
        pos = s
        skip()
      }
    } else skip()
  }
  if (pos !== buf.length) fail('excess bytes after the body')
  return out
}

// --- records: only the fields the interaction model reads ------------------------------------------

/** Which fields of a record to build: `true` = the whole value, a nested spec = only those fields. */
interface Spec {
  readonly [key: string]: Spec | true
}

/**
 * Everything `interpretOp` reads of a like, repost or post record, and `interpretPrivacyOp` of a block
 * (its subject is a DID string, kept whole) or profile (its self-labels); the rest is stepped over.
 */
const RECORD_SPEC: Spec = {
  subject: { uri: true },
  labels: { values: true },
  reply: { parent: { uri: true } },
  embed: { $type: true, record: { uri: true, record: { uri: true } } },
  text: true,
}

type CompiledSpec = [name: string, sub: CompiledSpec | true][]

function compile(spec: Spec): CompiledSpec {
  return Object.entries(spec).map(([k, v]) => [k, v === true ? true : compile(v)])
}

const RECORD = compile(RECORD_SPEC)

/**
 * A post while a bot is configured: also its facets (who it mentions) and both reply refs with their CIDs
 * (the bot's reply names them), core/mention.ts. Kept apart, so that without a bot no post pays for facets.
 */
const POST_FOR_BOT = compile({
  ...RECORD_SPEC,
  reply: { parent: { uri: true, cid: true }, root: { uri: true, cid: true } },
  facets: true,
})

/** One whole item at `pos`, through the generic decoder (text strings directly). */
function whole(): unknown {
  const start = pos
  const len = head()
  if (kind() === 3) {
    const at = pos
    pos += len
    if (pos > buf.length) fail('unexpected end of input')
    return utf8(buf, at, len)
  }
  pos = start
  const [value, rest] = decodeFirst(buf.subarray(pos))
  pos = buf.length - rest.length
  return value
}

function projected(spec: CompiledSpec, depth: number): unknown {
  if (depth > 8) fail('nesting too deep')
  const start = pos
  const n = head()
  if (kind() !== 5) {
    // Not a map: the model sees it as "not an object" whatever it is; keep it as the stock path would.
    pos = start
    return whole()
  }
  const out: Record<string, unknown> = {}
  for (let i = 0; i < n; i++) {
    const len = keyLength()
    const at = pos - len
    let matched = false
    for (const [name, sub] of spec) {
      if (is(at, len, name)) {
        out[name] = sub === true ? whole() : projected(sub, depth + 1)
        matched = true
        break
      }
    }
    if (!matched) skip()
  }
  return out
}

/**
 * Decodes a like/repost/post record keeping only the fields the interaction model reads (subject.uri,
 * reply.parent.uri, embed.$type/record, text): what `interpretOp` sees is the same as from a full
 * decode, without building facets, langs, createdAt, CIDs or image embeds. Throws on malformed CBOR.
 */
export function decodeRecord(bytes: Uint8Array, forBot = false): unknown {
  buf = bytes
  pos = 0
  const value = projected(forBot ? POST_FOR_BOT : RECORD, 0)
  if (pos !== buf.length) fail('excess bytes after the record')
  return value
}
