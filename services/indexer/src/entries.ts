import {
  CodecError,
  decodeEvent,
  type InteractionKind,
  type RecordType,
  type StreamEvent,
} from '@circles/core'

/** One stream entry as XREADGROUP / XAUTOCLAIM return it: id and flat field list. */
export type RawEntry = [id: string, fields: string[]]

export interface DecodedBatch {
  ids: string[]
  events: StreamEvent[]
  /** Event lines that did not decode (skipped). */
  badLines: number
  /** Entries without an `e` field (skipped). */
  badEntries: number
}

const TAB = 9
const KIND_OF: Record<number, InteractionKind> = {
  108: 'like',
  114: 'repost',
  112: 'reply',
  113: 'quote',
}
const RECORD_OF: Record<number, RecordType> = { 108: 'like', 114: 'repost', 112: 'post' }

/** The plain decimal in s[from, to), or -1 (empty, not only digits, or longer than a safe integer). */
function digits(s: string, from: number, to: number): number {
  if (to <= from || to - from > 15) return -1
  let n = 0
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i) - 48
    if (c < 0 || c > 9) return -1
    n = n * 10 + c
  }
  return n
}

/**
 * Creates and deletes (nearly every line) decoded in place from the entry's string, without splitting it
 * into line and field strings: what `decodeEvent` would return for the common, well-formed line, or null
 * for anything else (which then goes through `decodeEvent`, errors included).
 */
function decodeFast(s: string, from: number, to: number): StreamEvent | null {
  const type = s.charCodeAt(from)
  if (s.charCodeAt(from + 1) !== TAB || s.charCodeAt(from + 3) !== TAB) return null
  const code = s.charCodeAt(from + 2)
  const a = from + 4
  const b = s.indexOf('\t', a)
  if (b <= a || b >= to) return null
  const c = s.indexOf('\t', b + 1)
  if (c <= b + 1 || c >= to) return null
  const d = s.indexOf('\t', c + 1)
  if (type === 0x64) {
    // d <rec> <author> <rkey> <timeMs>
    const record = RECORD_OF[code]
    if (!record || (d >= 0 && d < to)) return null
    const time = digits(s, c + 1, to)
    if (time < 0) return null
    return { type: 'delete', record, author: s.slice(a, b), rkey: s.slice(b + 1, c), time }
  }
  if (type !== 0x63) return null
  // c <kind> <author> <rkey> <subject> <timeMs> <chars>
  const kind = KIND_OF[code]
  if (!kind || d <= c + 1 || d >= to) return null
  const e = s.indexOf('\t', d + 1)
  if (e < 0 || e >= to) return null
  const f = s.indexOf('\t', e + 1)
  if (f >= 0 && f < to) return null
  const time = digits(s, d + 1, e)
  const chars = digits(s, e + 1, to)
  if (time < 0 || chars < 0) return null
  return {
    type: 'create',
    kind,
    author: s.slice(a, b),
    rkey: s.slice(b + 1, c),
    subject: s.slice(c + 1, d),
    time,
    chars,
  }
}

/** Decodes entries line by line, so one malformed line costs only itself. Pure. */
export function decodeEntries(entries: readonly RawEntry[]): DecodedBatch {
  const out: DecodedBatch = { ids: [], events: [], badLines: 0, badEntries: 0 }
  for (const [id, fields] of entries) {
    out.ids.push(id)
    let value: string | undefined
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'e') value = fields[i + 1]
    if (value === undefined) {
      out.badEntries++
      continue
    }
    if (value === '') continue
    for (let from = 0; from <= value.length; ) {
      let to = value.indexOf('\n', from)
      if (to < 0) to = value.length
      const fast = decodeFast(value, from, to)
      if (fast) {
        out.events.push(fast)
      } else {
        try {
          out.events.push(decodeEvent(value.slice(from, to)))
        } catch (err) {
          if (!(err instanceof CodecError)) throw err
          out.badLines++
        }
      }
      from = to + 1
    }
  }
  return out
}
