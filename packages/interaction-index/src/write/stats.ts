/** What one `apply` did, by outcome (the indexer adds them up into its metrics). */
export type ApplyStats = ReturnType<typeof emptyStats>

/** The one list of the writer's counters, all zero. */
export function emptyStats() {
  return {
    /** Interaction creates seen (valid or not). */
    creates: 0,
    deletes: 0,
    /** Creates newly indexed. */
    added: 0,
    /** Creates already indexed (redelivery). */
    duplicates: 0,
    /** Creates refused: deleted earlier (tombstone) or the account was purged. */
    refused: 0,
    /** Interactions a delete removed. */
    removed: 0,
    /** Creates older than the window, skipped. */
    expired: 0,
    /** Events with an invalid DID or rkey, or a self-interaction, skipped. */
    invalid: 0,
    purges: 0,
    identities: 0,
    /** Opt-out events (blocks of the service's account, blocks deleted, profile labels) applied. */
    optOutEvents: 0,
    /** Accounts those events opted out or back in. */
    optOutsMoved: 0,
  }
}
