import type { InteractionKind, RecordType, StreamEvent } from './interaction.js'

// Stream entries carry events as compact lines, one per event, fields separated by tabs. Neither a tab nor a
// newline can occur in a valid DID, rkey, handle or status, so no escaping is needed; decode still checks.
//   c <kind> <author> <rkey> <subject> <timeMs> <chars>     create (kind: l r p q)
//   d <rec> <author> <rkey> <timeMs>                       delete (rec: l r p)
//   i <did> <handle|-> <timeMs>                            identity
//   a <did> <1|0> <status|-> <timeMs>                      account
//   b <c|d> <author> <rkey> <timeMs>                       block of the service's account / any block deleted
//   l <did> <1|0> <timeMs>                                 profile: carries the opt-out self-label or not

const KIND_CODE: Record<InteractionKind, string> = {
  like: 'l',
  repost: 'r',
  reply: 'p',
  quote: 'q',
}
const CODE_KIND: Record<string, InteractionKind> = {
  l: 'like',
  r: 'repost',
  p: 'reply',
  q: 'quote',
}
const REC_CODE: Record<RecordType, string> = { like: 'l', repost: 'r', post: 'p' }
const CODE_REC: Record<string, RecordType> = { l: 'like', r: 'repost', p: 'post' }

export class CodecError extends Error {
  override name = 'CodecError'
}

export function encodeEvent(e: StreamEvent): string {
  switch (e.type) {
    case 'create':
      return `c\t${KIND_CODE[e.kind]}\t${e.author}\t${e.rkey}\t${e.subject}\t${e.time}\t${e.chars}`
    case 'delete':
      return `d\t${REC_CODE[e.record]}\t${e.author}\t${e.rkey}\t${e.time}`
    case 'identity':
      return `i\t${e.did}\t${e.handle ?? '-'}\t${e.time}`
    case 'account':
      return `a\t${e.did}\t${e.active ? 1 : 0}\t${e.status ?? '-'}\t${e.time}`
    case 'block':
      return `b\t${e.action === 'create' ? 'c' : 'd'}\t${e.author}\t${e.rkey}\t${e.time}`
    case 'label':
      return `l\t${e.did}\t${e.on ? 1 : 0}\t${e.time}`
  }
}

function int(s: string | undefined, line: string): number {
  const n = Number(s)
  if (s === undefined || s === '' || !Number.isSafeInteger(n) || n < 0) {
    throw new CodecError(`bad number in event line: ${JSON.stringify(line)}`)
  }
  return n
}

export function decodeEvent(line: string): StreamEvent {
  const f = line.split('\t')
  switch (f[0]) {
    case 'c': {
      const kind = CODE_KIND[f[1] ?? '']
      if (kind && f.length === 7 && f[2] && f[3] && f[4]) {
        return {
          type: 'create',
          kind,
          author: f[2],
          rkey: f[3],
          subject: f[4],
          time: int(f[5], line),
          chars: int(f[6], line),
        }
      }
      break
    }
    case 'd': {
      const record = CODE_REC[f[1] ?? '']
      if (record && f.length === 5 && f[2] && f[3]) {
        return { type: 'delete', record, author: f[2], rkey: f[3], time: int(f[4], line) }
      }
      break
    }
    case 'i':
      if (f.length === 4 && f[1] && f[2]) {
        return {
          type: 'identity',
          did: f[1],
          handle: f[2] === '-' ? null : f[2],
          time: int(f[3], line),
        }
      }
      break
    case 'a':
      if (f.length === 5 && f[1] && (f[2] === '1' || f[2] === '0') && f[3]) {
        return {
          type: 'account',
          did: f[1],
          active: f[2] === '1',
          status: f[3] === '-' ? null : f[3],
          time: int(f[4], line),
        }
      }
      break
    case 'b':
      if (f.length === 5 && (f[1] === 'c' || f[1] === 'd') && f[2] && f[3]) {
        const action = f[1] === 'c' ? 'create' : 'delete'
        return { type: 'block', action, author: f[2], rkey: f[3], time: int(f[4], line) }
      }
      break
    case 'l':
      if (f.length === 4 && f[1] && (f[2] === '1' || f[2] === '0')) {
        return { type: 'label', did: f[1], on: f[2] === '1', time: int(f[3], line) }
      }
      break
  }
  throw new CodecError(`malformed event line: ${JSON.stringify(line)}`)
}

/** Many events in one stream entry value. */
export function encodeEvents(events: readonly StreamEvent[]): string {
  return events.map(encodeEvent).join('\n')
}

export function decodeEvents(value: string): StreamEvent[] {
  return value === '' ? [] : value.split('\n').map(decodeEvent)
}
