import { CodecError, decodeEvent, encodeEvents } from './codec.js'
import type { InteractionKind, RecordType, StreamEvent } from './interaction.js'

// Stream entries decoded into columns rather than one object per event: the indexer holds a batch of ~10^5
// events across several round trips to Redis, long enough for objects (and the DID strings sliced out of
// each entry) to be promoted and collected by the old generation, which cost it about a tenth of its CPU
// (BENCHMARKS.md, "Measurements the code relies on"). Creates and deletes keep their fields as byte ranges of the entry's buffer; the rest
// (identity and account events, a few a second) as objects.

export const EVENT_CREATE = 0
export const EVENT_DELETE = 1
/** An identity or account event: `others.get(i)`. */
export const EVENT_OTHER = 2

/** Kind codes of creates, in this order (the index layout uses the same numbers). */
export const COLUMN_KINDS: readonly InteractionKind[] = ['like', 'repost', 'reply', 'quote']
/** Record codes of deletes, in this order. */
export const COLUMN_RECORDS: readonly RecordType[] = ['like', 'repost', 'post']

export interface EventColumns {
  length: number
  /** EVENT_CREATE, EVENT_DELETE or EVENT_OTHER. */
  type: Uint8Array
  /** A create's kind or a delete's record type (indexes of COLUMN_KINDS / COLUMN_RECORDS). */
  code: Uint8Array
  time: Float64Array
  /** A create's characters of text. */
  chars: Float64Array
  /** The buffer holding the event's text fields, and their byte ranges in it (subject: creates only). */
  buf: Buffer[]
  authorStart: Int32Array
  authorEnd: Int32Array
  rkeyStart: Int32Array
  rkeyEnd: Int32Array
  subjectStart: Int32Array
  subjectEnd: Int32Array
  others: Map<number, StreamEvent>
  /** Lines that did not decode (skipped). */
  badLines: number
}

const TAB = 9
const NL = 10
// byte -> code, -1 for none
const KIND_OF = new Int8Array(128).fill(-1)
KIND_OF[0x6c] = 0 // l
KIND_OF[0x72] = 1 // r
KIND_OF[0x70] = 2 // p
KIND_OF[0x71] = 3 // q
const RECORD_OF = new Int8Array(128).fill(-1)
RECORD_OF[0x6c] = 0
RECORD_OF[0x72] = 1
RECORD_OF[0x70] = 2

function emptyColumns(capacity: number): EventColumns {
  return {
    length: 0,
    type: new Uint8Array(capacity),
    code: new Uint8Array(capacity),
    time: new Float64Array(capacity),
    chars: new Float64Array(capacity),
    buf: [],
    authorStart: new Int32Array(capacity),
    authorEnd: new Int32Array(capacity),
    rkeyStart: new Int32Array(capacity),
    rkeyEnd: new Int32Array(capacity),
    subjectStart: new Int32Array(capacity),
    subjectEnd: new Int32Array(capacity),
    others: new Map(),
    badLines: 0,
  }
}

function grown(c: EventColumns): EventColumns {
  const bigger = emptyColumns(c.type.length * 2)
  bigger.type.set(c.type)
  bigger.code.set(c.code)
  bigger.time.set(c.time)
  bigger.chars.set(c.chars)
  bigger.authorStart.set(c.authorStart)
  bigger.authorEnd.set(c.authorEnd)
  bigger.rkeyStart.set(c.rkeyStart)
  bigger.rkeyEnd.set(c.rkeyEnd)
  bigger.subjectStart.set(c.subjectStart)
  bigger.subjectEnd.set(c.subjectEnd)
  return { ...bigger, length: c.length, buf: c.buf, others: c.others, badLines: c.badLines }
}

/** The plain decimal in b[from, to), or -1 (empty, not only digits, or longer than a safe integer). */
function digits(b: Buffer, from: number, to: number): number {
  if (to <= from || to - from > 15) return -1
  let n = 0
  for (let i = from; i < to; i++) {
    const d = (b[i] as number) - 48
    if (d < 0 || d > 9) return -1
    n = n * 10 + d
  }
  return n
}

function tab(b: Buffer, from: number, to: number): number {
  for (let i = from; i < to; i++) if (b[i] === TAB) return i
  return -1
}

/**
 * A create or delete line decoded in place into row `i`, as `decodeEvent` would decode it, or false for
 * anything else (which then goes through `decodeEvent`, errors included).
 */
function decodeFast(c: EventColumns, i: number, b: Buffer, from: number, to: number): boolean {
  const type = b[from]
  if (b[from + 1] !== TAB || b[from + 3] !== TAB || to - from < 5) return false
  const ch = b[from + 2] as number
  const a = from + 4
  const x = tab(b, a, to)
  if (x <= a) return false
  const y = tab(b, x + 1, to)
  if (y <= x + 1) return false
  if (type === 0x64) {
    // d <rec> <author> <rkey> <timeMs>
    const record = ch < 128 ? (RECORD_OF[ch] as number) : -1
    if (record < 0) return false
    const time = digits(b, y + 1, to)
    if (time < 0) return false
    c.type[i] = EVENT_DELETE
    c.code[i] = record
    c.time[i] = time
    c.chars[i] = 0
    c.subjectStart[i] = 0
    c.subjectEnd[i] = 0
  } else if (type === 0x63) {
    // c <kind> <author> <rkey> <subject> <timeMs> <chars>
    const kind = ch < 128 ? (KIND_OF[ch] as number) : -1
    const z = tab(b, y + 1, to)
    if (kind < 0 || z <= y + 1) return false
    const w = tab(b, z + 1, to)
    if (w < 0 || tab(b, w + 1, to) >= 0) return false
    const time = digits(b, z + 1, w)
    const chars = digits(b, w + 1, to)
    if (time < 0 || chars < 0) return false
    c.type[i] = EVENT_CREATE
    c.code[i] = kind
    c.time[i] = time
    c.chars[i] = chars
    c.subjectStart[i] = y + 1
    c.subjectEnd[i] = z
  } else return false
  c.buf[i] = b
  c.authorStart[i] = a
  c.authorEnd[i] = x
  c.rkeyStart[i] = x + 1
  c.rkeyEnd[i] = y
  return true
}

/** Decodes stream entry values line by line, so one malformed line costs only itself. Pure. */
export function decodeColumns(values: readonly Buffer[]): EventColumns {
  let size = 0
  for (const v of values) size += v.length
  let c = emptyColumns(Math.max(16, Math.ceil(size / 64)))
  for (const v of values) {
    if (v.length === 0) continue
    for (let from = 0; from <= v.length; ) {
      let to = v.indexOf(NL, from)
      if (to < 0) to = v.length
      const i = c.length
      if (i === c.type.length) c = grown(c)
      if (decodeFast(c, i, v, from, to)) c.length++
      else {
        try {
          addEvent(c, decodeEvent(v.toString('utf8', from, to)))
        } catch (err) {
          if (!(err instanceof CodecError)) throw err
          c.badLines++
        }
      }
      from = to + 1
    }
  }
  return c
}

/** Appends an event decoded the slow way: creates and deletes are encoded again and decoded in place. */
function addEvent(c: EventColumns, e: StreamEvent): void {
  const i = c.length
  if (e.type === 'create' || e.type === 'delete') {
    const line = Buffer.from(encodeEvents([e]), 'utf8')
    if (!decodeFast(c, i, line, 0, line.length)) {
      throw new Error(`an encoded event does not decode: ${line.toString()}`)
    }
  } else {
    c.type[i] = EVENT_OTHER
    c.others.set(i, e)
  }
  c.length++
}

/** Events as columns (what the indexer's writer takes): encoded as stream lines, decoded. */
export function columnsOf(events: readonly StreamEvent[]): EventColumns {
  return decodeColumns(events.length === 0 ? [] : [Buffer.from(encodeEvents(events), 'utf8')])
}

/** Row `i` as an event object (tests; the writer's rare paths read single fields). */
export function eventAt(c: EventColumns, i: number): StreamEvent {
  const type = c.type[i]
  if (type === EVENT_OTHER) return c.others.get(i) as StreamEvent
  const b = c.buf[i] as Buffer
  const author = b.toString('utf8', c.authorStart[i], c.authorEnd[i])
  const rkey = b.toString('utf8', c.rkeyStart[i], c.rkeyEnd[i])
  const time = c.time[i] as number
  if (type === EVENT_DELETE) {
    return {
      type: 'delete',
      record: COLUMN_RECORDS[c.code[i] as number] as RecordType,
      author,
      rkey,
      time,
    }
  }
  return {
    type: 'create',
    kind: COLUMN_KINDS[c.code[i] as number] as InteractionKind,
    author,
    rkey,
    subject: b.toString('utf8', c.subjectStart[i], c.subjectEnd[i]),
    time,
    chars: c.chars[i] as number,
  }
}
