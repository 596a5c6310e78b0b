// What a scripted set of accounts did to each other, kept by the script itself as it writes, so that an
// end-to-end test can say what the API must answer without asking the code under test (nor the stock
// decoder, which uses the same interpretation). Pure bookkeeping: no I/O, no decoding.

export type LedgerKind = 'like' | 'repost' | 'reply' | 'quote'
export const LEDGER_KINDS: readonly LedgerKind[] = ['like', 'repost', 'reply', 'quote']

export interface KindTally {
  like: number
  repost: number
  reply: number
  quote: number
}

export interface PartnerTally {
  sent: KindTally
  received: KindTally
}

interface Entry {
  author: string
  subject: string
  kind: LedgerKind
  /** AT-URI of the record that made it: undoing the record undoes every interaction it made. */
  record: string
  live: boolean
}

export function emptyTally(): KindTally {
  return { like: 0, repost: 0, reply: 0, quote: 0 }
}

export class InteractionLedger {
  readonly #entries: Entry[] = []
  readonly #deletedAccounts = new Set<string>()
  /** Every record noted, self-interactions included, so that undoing an unknown one is a script error. */
  readonly #records = new Set<string>()
  /** Interactions an account made with itself: never counted anywhere. */
  selfInteractions = 0
  /** Interactions written with another account (each kind of a record once), undone or not. */
  created = 0

  /** `author` did `kind` to `subject` by writing `record`; a self-interaction is only tallied. */
  record(author: string, subject: string, kind: LedgerKind, record: string): void {
    this.#records.add(record)
    if (author === subject) {
      this.selfInteractions++
      return
    }
    this.created++
    this.#entries.push({ author, subject, kind, record, live: true })
  }

  /** A record that makes no interaction (a plain post): noted, so that deleting it later is no error. */
  plain(record: string): void {
    this.#records.add(record)
  }

  /** The record was deleted (unlike, unrepost, post deleted): what it made no longer counts. */
  undo(record: string): void {
    if (!this.#records.delete(record))
      throw new Error(`the ledger never saw ${record} (or undid it)`)
    for (const e of this.#entries) if (e.record === record) e.live = false
  }

  /** The account is gone: nothing it did, and nothing done to it, counts any more. */
  deleteAccount(did: string): void {
    this.#deletedAccounts.add(did)
    this.optOut(did)
  }

  /**
   * The account opted out: what it did and what was done to it no longer counts, and does not come back
   * when it returns (the index deleted it); what it does after its return counts again.
   */
  optOut(did: string): void {
    for (const e of this.#entries) if (e.author === did || e.subject === did) e.live = false
  }

  isDeleted(did: string): boolean {
    return this.#deletedAccounts.has(did)
  }

  /** Every account's partners and counts in both directions; an account without any is absent. */
  partnersOf(did: string): Map<string, PartnerTally> {
    const out = new Map<string, PartnerTally>()
    const tallyOf = (partner: string) => {
      let t = out.get(partner)
      if (!t) {
        t = { sent: emptyTally(), received: emptyTally() }
        out.set(partner, t)
      }
      return t
    }
    for (const e of this.#live()) {
      if (e.author === did) tallyOf(e.subject).sent[e.kind]++
      if (e.subject === did) tallyOf(e.author).received[e.kind]++
    }
    return out
  }

  /** Live interactions by kind. */
  totals(): KindTally {
    const t = emptyTally()
    for (const e of this.#live()) t[e.kind]++
    return t
  }

  /** Live interactions per author (or per subject), of one kind or of all: DID -> count, zeros left out. */
  countsBy(side: 'author' | 'subject', kind: LedgerKind | 'all'): Map<string, number> {
    const out = new Map<string, number>()
    for (const e of this.#live()) {
      if (kind !== 'all' && e.kind !== kind) continue
      const did = side === 'author' ? e.author : e.subject
      out.set(did, (out.get(did) ?? 0) + 1)
    }
    return out
  }

  /** How many live and undone interactions of each kind the script wrote: shows what a run covered. */
  coverage(): { live: KindTally; undone: KindTally } {
    const live = emptyTally()
    const undone = emptyTally()
    for (const e of this.#entries) (e.live ? live : undone)[e.kind]++
    return { live, undone }
  }

  *#live(): Generator<Entry> {
    for (const e of this.#entries) if (e.live) yield e
  }
}

/** Weighted score of a partner, as the circles API defines it: the weights times the counts of the direction(s). */
export function weightedScore(
  t: PartnerTally,
  weights: KindTally,
  direction: 'sent' | 'received' | 'both',
): number {
  let score = 0
  for (const k of LEDGER_KINDS) {
    const n =
      (direction !== 'received' ? t.sent[k] : 0) + (direction !== 'sent' ? t.received[k] : 0)
    score += weights[k] * n
  }
  return score
}
