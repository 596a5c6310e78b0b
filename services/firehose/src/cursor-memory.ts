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
    return { relay, seq: c.seq, safe: isSeq(c.safe) ? Math.min(c.safe, c.seq) : null }
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

export class CursorMemory {
  /** The last cursor Redis held for us (read or written), or the file's at start. */
  private last: number | null
  private safe: number | null
  private written = ''

  constructor(
    private readonly file: string | null,
    private readonly relay: string,
  ) {
    const c = file ? readCheckpoint(file, relay) : null
    this.last = c?.seq ?? null
    this.safe = c?.safe ?? null
  }

  /** The last cursor Redis held for us; null when this firehose never had one. */
  get lastKnown(): number | null {
    return this.last
  }

  /**
   * Where to resume when Redis holds no cursor where it held one: the last cursor the indexer had applied
   * everything up to, else (never seen drained) the last one Redis held. Null: never had a cursor.
   */
  get fallback(): number | null {
    return this.safe ?? this.last
  }

  /** Redis holds (or now took) `seq` for us. */
  note(seq: number): void {
    this.last = seq
  }

  /** The indexer had read and acknowledged everything published up to `seq`. */
  noteApplied(seq: number): void {
    if (this.safe === null || seq > this.safe) this.safe = seq
  }

  /** Writes the file if anything moved since the last write; a no-op without a file. */
  flush(): void {
    if (!this.file || this.last === null) return
    const checkpoint: Checkpoint = { relay: this.relay, seq: this.last, safe: this.safe }
    const text = JSON.stringify(checkpoint)
    if (text === this.written) return
    writeCheckpoint(this.file, checkpoint)
    this.written = text
  }
}
