import { CodecError, decodeEvent, type StreamEvent } from '@circles/core'

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
    for (const line of value.split('\n')) {
      try {
        out.events.push(decodeEvent(line))
      } catch (err) {
        if (!(err instanceof CodecError)) throw err
        out.badLines++
      }
    }
  }
  return out
}
