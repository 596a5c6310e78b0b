/** What one `apply` did, by outcome (the indexer adds them up into its metrics). */
export interface ApplyStats {
  /** Interaction creates seen (valid or not). */
  creates: number
  deletes: number
  /** Creates newly indexed. */
  added: number
  /** Creates already indexed (redelivery). */
  duplicates: number
  /** Creates refused: deleted earlier (tombstone) or the account was purged. */
  refused: number
  /** Interactions a delete removed. */
  removed: number
  /** Creates older than the window, skipped. */
  expired: number
  /** Events with an invalid DID or rkey, or a self-interaction, skipped. */
  invalid: number
  purges: number
  identities: number
  /** Opt-out events (blocks of the service's account, blocks deleted, profile labels) applied. */
  optOutEvents: number
  /** Accounts those events opted out or back in. */
  optOutsMoved: number
}

export function emptyStats(): ApplyStats {
  return {
    creates: 0,
    deletes: 0,
    added: 0,
    duplicates: 0,
    refused: 0,
    removed: 0,
    expired: 0,
    invalid: 0,
    purges: 0,
    identities: 0,
    optOutEvents: 0,
    optOutsMoved: 0,
  }
}
