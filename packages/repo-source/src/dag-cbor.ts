// A small DAG-CBOR reader for the three shapes a repo CAR is made of: the CAR header, MST nodes and
// records. @atproto/lex-cbor (what @atproto/repo decodes with) takes ~26 µs per block on a 100k-record
// repo (MST nodes with their CIDs are the slow part, records ~4 µs), i.e. ~15k records/s before any
// other work; this reads a block in about a microsecond. Anything this reader does not handle the way
// lex-cbor does (CIDs or bytes inside a record, floats, huge integers, non-minimal heads, keys out of
// DAG-CBOR order) goes back to lex-cbor, so a record comes out exactly as @atproto/repo would give it.
// One module with its state in module variables (as the firehose's cbor-scan): the fastest V8 gets.

/** Malformed CBOR, or not the shape asked for. */
export class CborError extends Error {
  override name = 'CborError'
}

/** Returned by `decodeRecord` when the record needs the generic decoder. */
export const GENERIC = Symbol('generic')

let buf: Uint8Array = new Uint8Array(0)
let pos = 0
/** End of the item being read: blocks are read in place, inside a larger buffer. */
let limit = 0
let major = 0
/** False when the last head used more bytes than its value needs (DAG-CBOR forbids that). */
let minimal = true

function start(bytes: Uint8Array, at: number, end: number): void {
  buf = bytes
  pos = at
  limit = end
}

function kind(): number {
  return major
}

function fail(what: string): never {
  throw new CborError(what)
}

function u32(at: number): number {
  return (
    (buf[at] as number) * 0x1000000 +
    (((buf[at + 1] as number) << 16) | ((buf[at + 2] as number) << 8) | (buf[at + 3] as number))
  )
}

/** Reads an item head: sets `major` and `minimal`, returns the argument (length, value or tag). */
function head(): number {
  if (pos >= limit) fail('unexpected end of input')
  const b = buf[pos++] as number
  major = b >> 5
  const info = b & 0x1f
  minimal = true
  if (info < 24) return info
  let n: number
  if (info === 24) {
    n = buf[pos] as number
    pos += 1
    minimal = n >= 24
  } else if (info === 25) {
    n = ((buf[pos] as number) << 8) | (buf[pos + 1] as number)
    pos += 2
    minimal = n > 0xff
  } else if (info === 26) {
    n = u32(pos)
    pos += 4
    minimal = n > 0xffff
  } else if (info === 27) {
    n = u32(pos) * 0x100000000 + u32(pos + 4)
    pos += 8
    minimal = n > 0xffffffff
  } else {
    return fail('indefinite length or reserved encoding')
  }
  if (pos > limit) fail('unexpected end of input')
  return n
}

/** Steps over one whole item, checking that every length stays inside the input. */
function skip(depth: number): void {
  if (depth > 64) fail('nesting too deep')
  const arg = head()
  switch (major) {
    case 2:
    case 3:
      pos += arg
      if (pos > limit) fail('unexpected end of input')
      return
    case 4:
      for (let i = 0; i < arg; i++) skip(depth + 1)
      return
    case 5:
      for (let i = 0; i < arg; i++) {
        const len = head()
        if (kind() !== 3) fail('map key is not text')
        pos += len
        skip(depth + 1)
      }
      return
    case 6:
      skip(depth + 1)
      return
    default:
      return
  }
}

const latin1Slice = (
  Buffer.prototype as unknown as {
    latin1Slice: (this: Uint8Array, start: number, end: number) => string
  }
).latin1Slice
const utf8Slice = (
  Buffer.prototype as unknown as {
    utf8Slice: (this: Uint8Array, start: number, end: number) => string
  }
).utf8Slice

/** The bytes [at, at + len) as a string, one char per byte (ASCII names: collections, rkeys). */
export function latin1(bytes: Uint8Array, at: number, len: number): string {
  return latin1Slice.call(bytes, at, at + len)
}

/**
 * UTF-8 text; ASCII (keys, DIDs, URIs, dates) takes Node's latin1 slice, faster still. Node's UTF-8
 * slice replaces invalid bytes with U+FFFD where lex-cbor may not: text holding U+FFFD is thrown back
 * (GENERIC), whether the author wrote one or the bytes were broken, and lex-cbor decides.
 */
function text(at: number, len: number): string {
  for (let i = at; i < at + len; i++) {
    if ((buf[i] as number) >= 0x80) {
      const s = utf8Slice.call(buf, at, at + len)
      if (s.includes('\uFFFD')) throw new CborError('text that may not be valid UTF-8')
      return s
    }
  }
  return latin1Slice.call(buf, at, at + len)
}

/**
 * Recent map keys by a hash of their length and end bytes. A record's keys repeat ($type, subject, uri,
 * createdAt...): handing back the same string saves V8 from looking a fresh one up in its table of
 * property names for every key of every record.
 */
const keyCache: (string | undefined)[] = new Array(256)

function keyText(at: number, len: number): string {
  if (len === 0 || len > 32) return text(at, len)
  const slot = (len * 31 + (buf[at] as number) * 7 + (buf[at + len - 1] as number)) & 255
  const cached = keyCache[slot]
  if (cached !== undefined && cached.length === len) {
    let i = 0
    while (i < len && cached.charCodeAt(i) === buf[at + i]) i++
    if (i === len) return cached
  }
  const key = text(at, len)
  // ASCII only: a cached non-ASCII key could match different bytes char by char. Cached as V8's own
  // property-name string (what an object literal's key turns into), so no later use looks it up.
  if (key.length === len) keyCache[slot] = Object.keys({ [key]: 0 })[0] as string
  return key
}

function isText(at: number, len: number, s: string): boolean {
  if (len !== s.length) return false
  for (let i = 0; i < len; i++) if (buf[at + i] !== s.charCodeAt(i)) return false
  return true
}

// --- CAR header ------------------------------------------------------------------------------------

/** The roots of a CARv1 header `{version: 1, roots: [CID...]}`, each as its CID bytes (no 0x00 prefix). */
export function readCarHeader(bytes: Uint8Array): Uint8Array[] {
  start(bytes, 0, bytes.length)
  const n = head()
  if (kind() !== 5) fail('CAR header is not a map')
  let version = -1
  let roots: Uint8Array[] | undefined
  for (let i = 0; i < n; i++) {
    const len = head()
    if (kind() !== 3) fail('CAR header key is not text')
    const at = pos
    pos += len
    if (isText(at, len, 'version')) {
      version = head()
      if (kind() !== 0) fail('CAR version is not an integer')
    } else if (isText(at, len, 'roots')) {
      const count = head()
      if (kind() !== 4) fail('CAR roots is not an array')
      roots = []
      for (let r = 0; r < count; r++) roots.push(cidLink())
    } else {
      skip(1)
    }
  }
  if (pos !== limit) fail('excess bytes after the CAR header')
  if (version !== 1) fail(`CAR version ${version}, expected 1`)
  if (!roots) fail('CAR header has no roots')
  return roots
}

/** A tag-42 CID link; returns the CID bytes without the 0x00 multibase prefix. */
function cidLink(): Uint8Array {
  const at = cidLinkAt()
  return buf.subarray(at, at + CID_LENGTH)
}

/** Length of the only CIDs a repo holds: v1, dag-cbor or raw, sha2-256 (1 + 1 + 1 + 1 + 32 bytes). */
export const CID_LENGTH = 36

/** Reads a tag-42 CID link and returns the offset of its CID bytes; only CIDv1 sha2-256 links. */
function cidLinkAt(): number {
  const tag = head()
  if (kind() !== 6 || tag !== 42) fail('not a CID link')
  const len = head()
  if (kind() !== 2 || len !== CID_LENGTH + 1 || buf[pos] !== 0) fail('not a CIDv1 sha2-256 link')
  const at = pos + 1
  pos += len
  if (pos > limit) fail('unexpected end of input')
  if (!isRepoCid(buf, at)) fail('not a CIDv1 sha2-256 link')
  return at
}

/** CIDv1, codec dag-cbor (0x71) or raw (0x55), multihash sha2-256 (0x12) of 32 bytes. */
export function isRepoCid(bytes: Uint8Array, at: number): boolean {
  const codec = bytes[at + 1]
  return (
    bytes[at] === 0x01 &&
    (codec === 0x71 || codec === 0x55) &&
    bytes[at + 2] === 0x12 &&
    bytes[at + 3] === 0x20
  )
}

/** Reads a map key (DAG-CBOR keys are text) and returns its offset; it is `pos - offset` bytes long. */
function keyAt(): number {
  const len = head()
  if (kind() !== 3) fail('map key is not text')
  const at = pos
  pos += len
  if (pos > limit) fail('unexpected end of input')
  return at
}

// --- which blocks to keep ---------------------------------------------------------------------------

/** Record types as bytes, matched against a block's `$type` without making a string of it. */
export class WantedTypes {
  private readonly types: Uint8Array[]

  constructor(types: Iterable<string>) {
    this.types = [...types].map((t) => new TextEncoder().encode(t))
  }

  has(bytes: Uint8Array, at: number, len: number): boolean {
    for (const type of this.types) {
      if (type.length !== len) continue
      let i = len - 1
      // From the end: wanted types share their NSID's authority, they differ in the name.
      while (i >= 0 && type[i] === bytes[at + i]) i--
      if (i < 0) return true
    }
    return false
  }
}

export const BLOCK_OTHER = 0
export const BLOCK_MST = 1
export const BLOCK_RECORD = 2

/**
 * What a dag-cbor block is, told without decoding it: an MST node (a map whose keys are `e` and `l`,
 * checked in full when the tree is walked), a record whose `$type` is wanted (its CBOR checked to the
 * end), or anything else. Malformed CBOR is "anything else": if the tree needs it, the walk says so.
 */
export function classifyBlock(
  bytes: Uint8Array,
  at: number,
  end: number,
  wanted: WantedTypes,
): number {
  start(bytes, at, end)
  try {
    const n = head()
    if (kind() !== 5) return BLOCK_OTHER
    if (n === 2 && buf[pos] === 0x61 && (buf[pos + 1] === 0x65 || buf[pos + 1] === 0x6c)) {
      return BLOCK_MST
    }
    let found = false
    for (let i = 0; i < n; i++) {
      const at = keyAt()
      if (pos - at === 5 && isText(at, 5, '$type')) {
        const len = head()
        if (kind() !== 3 || pos + len > limit) return BLOCK_OTHER
        if (!wanted.has(buf, pos, len)) return BLOCK_OTHER
        pos += len
        found = true
      } else {
        skip(1)
      }
    }
    return found && pos === limit ? BLOCK_RECORD : BLOCK_OTHER
  } catch (err) {
    if (err instanceof CborError) return BLOCK_OTHER
    throw err
  }
}

// --- records ----------------------------------------------------------------------------------------

/**
 * A record as a plain object, the way lex-cbor decodes it, or `GENERIC` when it holds something this
 * fast path leaves to lex-cbor (a CID or bytes, e.g. an image's blob ref; a float; an integer past
 * 2^53; a non-minimal head; a duplicate or `__proto__` key; invalid UTF-8; malformed CBOR).
 */
export function decodeRecord(bytes: Uint8Array, at = 0, end = bytes.length): unknown {
  start(bytes, at, end)
  try {
    const value = item(0)
    return pos === limit ? value : GENERIC
  } catch {
    return GENERIC
  }
}

function item(depth: number): unknown {
  if (depth > 32) return GENERIC
  const arg = head()
  if (!minimal) return GENERIC
  switch (major) {
    case 0:
      return arg <= Number.MAX_SAFE_INTEGER ? arg : GENERIC
    case 1:
      return arg < Number.MAX_SAFE_INTEGER ? -1 - arg : GENERIC
    case 3: {
      const at = pos
      pos += arg
      if (pos > limit) fail('unexpected end of input')
      return text(at, arg)
    }
    case 4: {
      // Every item takes a byte at least: a length past the input is malformed, not a huge array.
      if (arg > limit - pos) fail('unexpected end of input')
      const out: unknown[] = []
      for (let i = 0; i < arg; i++) {
        const v = item(depth + 1)
        if (v === GENERIC) return GENERIC
        out.push(v)
      }
      return out
    }
    case 5:
      return map(arg, depth)
    case 7:
      if (arg === 20) return false
      if (arg === 21) return true
      if (arg === 22) return null
      return GENERIC
    default:
      return GENERIC
  }
}

function map(n: number, depth: number): unknown {
  const out: Record<string, unknown> = {}
  let previousAt = 0
  let previousLen = -1
  for (let i = 0; i < n; i++) {
    const len = head()
    if (kind() !== 3 || !minimal) return GENERIC
    const at = pos
    pos += len
    if (pos > limit) fail('unexpected end of input')
    // Keys in DAG-CBOR's order (shorter first, then bytewise) cannot repeat: cheaper than a lookup in
    // the object for each key. Another order is legal CBOR: lex-cbor decides about it.
    if (!keyAfter(buf, previousAt, previousLen, at, len)) return GENERIC
    previousAt = at
    previousLen = len
    const key = keyText(at, len)
    if (key === '__proto__') return GENERIC
    const v = item(depth + 1)
    if (v === GENERIC) return GENERIC
    out[key] = v
  }
  return out
}

/** Whether the map key at `bytes[at, at + len)` comes after the previous one in DAG-CBOR's key order. */
export function keyAfter(
  bytes: Uint8Array,
  previousAt: number,
  previousLen: number,
  at: number,
  len: number,
): boolean {
  if (len !== previousLen) return len > previousLen
  for (let i = 0; i < len; i++) {
    const a = bytes[previousAt + i] as number
    const b = bytes[at + i] as number
    if (a !== b) return b > a
  }
  return false
}

// --- MST nodes --------------------------------------------------------------------------------------

/** Fields per entry in `readMstNode`'s answer: prefix length, key at, key length, value CID at, subtree CID at. */
export const MST_ENTRY = 5

/**
 * An MST node `{l: CID | null, e: [{p, k, v, t}]}` as offsets into its bytes, without building objects:
 * `[leftAt, ...entries]`, each entry `MST_ENTRY` numbers (p, kAt, kLen, vAt, tAt); a CID "at" is the
 * offset of its `CID_LENGTH` bytes, -1 for null. Throws `CborError` when the node is not that shape.
 */
export function readMstNode(bytes: Uint8Array, at: number, end: number): number[] {
  start(bytes, at, end)
  const n = head()
  if (kind() !== 5 || n !== 2) fail('MST node is not a map of e and l')
  let left = -2
  let entries = -1
  for (let i = 0; i < 2; i++) {
    const at = keyAt()
    if (pos - at !== 1) fail('MST node key is not e or l')
    if (buf[at] === 0x65 && entries < 0) {
      entries = pos
      skip(1)
    } else if (buf[at] === 0x6c && left === -2) {
      left = nullableCidAt()
    } else {
      fail('MST node key is not e or l')
    }
  }
  if (pos !== limit) fail('excess bytes after the MST node')
  pos = entries
  const count = head()
  if (kind() !== 4) fail('MST entries are not an array')
  const out = [left]
  for (let i = 0; i < count; i++) readEntry(out)
  return out
}

function nullableCidAt(): number {
  if (buf[pos] === 0xf6) {
    pos++
    return -1
  }
  return cidLinkAt()
}

function readEntry(out: number[]): void {
  const n = head()
  if (kind() !== 5 || n !== 4) fail('MST entry is not a map of k, p, t and v')
  let p = -1
  let kAt = -1
  let kLen = 0
  let vAt = -1
  let tAt = -2
  for (let i = 0; i < 4; i++) {
    const at = keyAt()
    const name = pos - at === 1 ? buf[at] : 0
    if (name === 0x70 && p < 0) {
      p = head()
      if (kind() !== 0) fail('MST entry p is not an integer')
    } else if (name === 0x6b && kAt < 0) {
      kLen = head()
      if (kind() !== 2) fail('MST entry k is not bytes')
      kAt = pos
      pos += kLen
      if (pos > limit) fail('unexpected end of input')
    } else if (name === 0x76 && vAt < 0) {
      vAt = cidLinkAt()
    } else if (name === 0x74 && tAt === -2) {
      tAt = nullableCidAt()
    } else {
      fail('MST entry key is not k, p, t or v')
    }
  }
  out.push(p, kAt, kLen, vAt, tAt)
}
