import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

// Redis holds the cursor, written in the same MULTI as each batch, and stays the authority. But a Redis that
// comes back empty (a restart without persistence, a replica promoted empty, FLUSHALL) loses it, and a
// firehose that then found "no cursor" used to start live: every event between the loss and now was gone,
// silently. This remembers, in memory and in a small file, the last cursor up to which the indexer had
// applied everything (the stream read and acknowledged): a lost cursor is noticed, said loudly, and the
// firehose resumes from there, so what was published but lost with the stream unread comes again (where
// the relay still has it). Replaying a stretch twice is safe: the indexer applies an event twice as once.

export interface Checkpoint {
  relay: string
  /** The last cursor Redis held for us. */
  seq: number
  /** The last cursor up to which the indexer had applied everything (at most `seq`). */
  safe: number | null
  /** [ms, seq]: where the stream stood over the last hours, oldest first (see `fallback`). */
  marks?: [number, number][]
}

const isSeq = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0

/** The checkpoint in `file` for `relay`, or null: none, unreadable, or another relay's (seqs differ). */
export function readCheckpoint(file: string, relay: string): Checkpoint | null {
  let raw: string
  try {
    raw = readFileSync(file, 'utf8')
  } catch {
    return null
  }
  try {
    const c = JSON.parse(raw) as Partial<Checkpoint>
    if (c.relay !== relay || !isSeq(c.seq)) return null
    const marks = Array.isArray(c.marks)
      ? c.marks.filter((m) => Array.isArray(m) && Number.isFinite(m[0]) && isSeq(m[1]))
      : []
    return { relay, seq: c.seq, safe: isSeq(c.safe) ? Math.min(c.safe, c.seq) : null, marks }
  } catch {
    return null
  }
}

/** Writes atomically (a temporary file renamed over the old), so a crash never leaves half a file. */
export function writeCheckpoint(file: string, checkpoint: Checkpoint): void {
  mkdirSync(dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(checkpoint)}\n`)
  renameSync(tmp, file)
}

/** A mark at most this often: a day of marks is a few hundred bytes. */
const MARK_EVERY_MS = 10 * 60_000

export class CursorMemory {
  /** The last cursor Redis held for us (read or written), or the file's at start. */
  private last: number | null
  private safe: number | null
  private marks: [number, number][]
  private written = ''

  /**
   * @param refillMs how far back to go when Redis lost its data: the index went with it, so the relay is
   * asked again for that long (it keeps 72 h); 0 resumes from the last applied cursor only.
   */
  constructor(
    private readonly file: string | null,
    private readonly relay: string,
    private readonly refillMs = 0,
    private readonly now: () => number = Date.now,
  ) {
    const c = file ? readCheckpoint(file, relay) : null
    this.last = c?.seq ?? null
    this.safe = c?.safe ?? null
    this.marks = c?.marks ?? []
  }

  /** The last cursor Redis held for us; null when this firehose never had one. */
  get lastKnown(): number | null {
    return this.last
  }

  /**
   * Where to resume when Redis holds no cursor where it held one. With a refill window: the newest mark at
   * least that old, else the oldest mark (where this firehose began). Without: the last cursor the indexer
   * had applied everything up to, else (never seen drained) the last one Redis held. Null: never had one.
   */
  get fallback(): number | null {
    const applied = this.safe ?? this.last
    if (this.refillMs === 0 || this.marks.length === 0) return applied
    const horizon = this.now() - this.refillMs
    let pick = this.marks[0] as [number, number]
    for (const m of this.marks) if (m[0] <= horizon) pick = m
    return applied === null ? pick[1] : Math.min(pick[1], applied)
  }

  /** Redis holds (or now took) `seq` for us. */
  note(seq: number): void {
    this.last = seq
  }

  /** This firehose starts reading at `seq`: the oldest point it can go back to, if it has none older. */
  noteStart(seq: number): void {
    if (this.marks.length === 0) this.marks.push([this.now(), seq])
  }

  /** The indexer had read and acknowledged everything published up to `seq`. */
  noteApplied(seq: number): void {
    if (this.safe === null || seq > this.safe) this.safe = seq
    const now = this.now()
    const newest = this.marks.at(-1)
    if (!newest || now - newest[0] >= MARK_EVERY_MS) this.marks.push([now, seq])
    // Keep one mark older than the window, so the window can always be gone back to whole.
    while (this.marks.length > 1 && (this.marks[1] as [number, number])[0] <= now - this.refillMs) {
      this.marks.shift()
    }
  }

  /** Writes the file if anything moved since the last write; a no-op without a file. */
  flush(): void {
    if (!this.file || this.last === null) return
    const checkpoint: Checkpoint = {
      relay: this.relay,
      seq: this.last,
      safe: this.safe,
      marks: this.marks,
    }
    const text = JSON.stringify(checkpoint)
    if (text === this.written) return
    writeCheckpoint(this.file, checkpoint)
    this.written = text
  }
}
