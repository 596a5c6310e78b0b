import { decodeColumns, type EventColumns } from '@circles/core'

/** One stream entry as XREADGROUP / XAUTOCLAIM return it with buffers: id and flat field list. */
export type RawEntry = [id: Buffer, fields: Buffer[]]

export interface DecodedBatch {
  ids: Buffer[]
  events: EventColumns
  /** Event lines that did not decode (skipped). */
  badLines: number
  /** Entries without an `e` field (skipped). */
  badEntries: number
}

const E = 0x65

/**
 * Decodes entries line by line, so one malformed line costs only itself. Entries stay buffers: the events
 * keep byte ranges of them (see EventColumns), with no string made per entry or per DID. Pure.
 */
export function decodeEntries(entries: readonly RawEntry[]): DecodedBatch {
  const ids: Buffer[] = []
  const values: Buffer[] = []
  let badEntries = 0
  for (const [id, fields] of entries) {
    ids.push(id)
    let value: Buffer | undefined
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const f = fields[i] as Buffer
      if (f.length === 1 && f[0] === E) value = fields[i + 1]
    }
    if (value === undefined) badEntries++
    else values.push(value)
  }
  const events = decodeColumns(values)
  return { ids, events, badLines: events.badLines, badEntries }
}
