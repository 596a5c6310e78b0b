import { CodecError, decodeColumns, decodeEvent, type EventColumns } from '@circles/core'

/**
 * One stream entry as XREADGROUP / XAUTOCLAIM return it with buffers: id and flat field list. The fields are
 * null for an entry deleted from the stream (trimmed, XDEL) while it was pending: a re-read of one's own
 * pending entries (XREADGROUP ... 0) still lists it.
 */
export type RawEntry = [id: Buffer, fields: Buffer[] | null]

/** An entry that cannot be applied because of its own content: dead-lettered, then acknowledged. */
export interface PoisonEntry {
  id: Buffer
  fields: Buffer[]
  error: string
}

export interface DecodedBatch {
  /** Every entry's id, to acknowledge once the batch is applied (poison and lost entries included). */
  ids: Buffer[]
  events: EventColumns
  /** Event lines that did not decode (skipped). */
  badLines: number
  /** Entries without an `e` field (skipped). */
  badEntries: number
  /** Entries with a line that does not decode, or without an `e` field (their good lines are applied). */
  poison: PoisonEntry[]
  /** Ids of entries deleted from the stream while pending: nothing left to apply. */
  lost: Buffer[]
}

const E = 0x65
const M = 0x6d
const NL = 10

/**
 * Decodes entries line by line, so one malformed line costs only itself. Entries stay buffers: the events
 * keep byte ranges of them (see EventColumns), with no string made per entry or per DID. Pure.
 *
 * An entry with a line that does not decode is poison: the firehose writes only lines that decode, so such
 * an entry was written by something else or damaged, and reading it again will not change it. Its good
 * lines are still applied (as before: a bad line costs only itself), and the whole entry goes to the
 * dead-letter stream with the first bad line's error; replaying it later is safe, since writes are
 * idempotent.
 */
export function decodeEntries(entries: readonly RawEntry[]): DecodedBatch {
  const ids: Buffer[] = []
  const values: Buffer[] = []
  const owners: number[] = []
  const poison: PoisonEntry[] = []
  const lost: Buffer[] = []
  let badEntries = 0
  entries.forEach(([id, fields], index) => {
    ids.push(id)
    if (fields === null) {
      lost.push(id)
      return
    }
    let value: Buffer | undefined
    let mentions = false
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const f = fields[i] as Buffer
      if (f.length === 1 && f[0] === E) value = fields[i + 1]
      else if (f.length === 1 && f[0] === M) mentions = true
    }
    // The bot's entries (posts mentioning it, core/mention.ts): nothing for the index; acknowledged.
    if (value === undefined && mentions) return
    if (value === undefined) {
      badEntries++
      poison.push({ id, fields, error: 'entry has no `e` field' })
    } else {
      values.push(value)
      owners.push(index)
    }
  })
  const events = decodeColumns(values)
  // Rare: only then is each entry decoded again on its own, to find the entries the bad lines are in.
  if (events.badLines > 0) {
    values.forEach((value, i) => {
      const error = lineFault(value)
      if (error === null) return
      const [id, fields] = entries[owners[i] as number] as [Buffer, Buffer[]]
      poison.push({ id, fields, error })
    })
  }
  return { ids, events, badLines: events.badLines, badEntries, poison, lost }
}

/** Why an entry value has lines that do not decode (how many, the first one's error), or null. */
function lineFault(value: Buffer): string | null {
  const bad = decodeColumns([value]).badLines
  if (bad === 0) return null
  let lines = 0
  let first = ''
  for (let from = 0; from <= value.length; lines++) {
    let to = value.indexOf(NL, from)
    if (to < 0) to = value.length
    if (first === '') {
      try {
        decodeEvent(value.toString('utf8', from, to))
      } catch (err) {
        if (err instanceof CodecError) first = err.message
        else throw err
      }
    }
    from = to + 1
  }
  const rest = lines - bad
  return `${bad} of ${lines} event lines do not decode (the other ${rest} were applied); first: ${first.slice(0, 300)}`
}
