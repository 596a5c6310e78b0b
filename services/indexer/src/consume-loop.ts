import type { Logger } from '@circles/logging'
import { type FaultHandler, IndexerStopping } from './backoff.js'
import type { IndexerConfig } from './config.js'
import type { ConsumerGroup } from './consumer-group.js'
import type { RawEntry } from './entries.js'
import type { IndexerCounters } from './metrics.js'

// The indexer's consuming loop: this consumer's own pending entries first (a restart under the same
// name), then new ones with batches in flight and the next read ahead, and now and then the entries a
// dead consumer left pending. What a batch does is the batch applier's (batch.ts); what a failure costs,
// the fault handler's (backoff.ts).

/**
 * Batches applied at once by one process (see run). Three, not two: with two, the batch after next was
 * prepared only once Redis had written the next one (about 12 % fewer interactions/s in paired runs:
 * BENCHMARKS.md, "Measurements the code relies on").
 */
const IN_FLIGHT = 3

export interface ConsumeLoopDeps {
  group: ConsumerGroup
  applyEntries(entries: RawEntry[]): Promise<void>
  faults: FaultHandler
  counters: IndexerCounters
  config: Pick<IndexerConfig, 'claimIntervalMs'>
  /** False once the service closes: the loop ends after the batch in hand. */
  running(): boolean
  log: Logger
}

/** Runs until `running()` turns false; resolves once every batch it took is applied or left pending. */
export function consume(d: ConsumeLoopDeps): Promise<void> {
  const { group, applyEntries, faults, counters, config, log } = d

  /** Takes over entries another consumer left pending too long (it died or hangs). */
  async function claim(): Promise<void> {
    let start = '0-0'
    for (let round = 0; round < 100 && d.running(); round++) {
      const page = await group.claimPage(start)
      if (page.deleted.length > 0) {
        // XAUTOCLAIM has dropped them from the group: nobody will apply them.
        counters.lostEntries += page.deleted.length
        log.warn(
          { ids: page.deleted.slice(0, 20), count: page.deleted.length },
          'pending entries were deleted from the stream (trimmed?) before anyone applied them: lost',
        )
      }
      if (page.entries.length > 0) {
        counters.claimed += page.entries.length
        log.info({ count: page.entries.length }, 'reclaimed pending entries')
        await applyEntries(page.entries)
      }
      start = page.next
      if (start === '0-0') break
    }
  }

  async function run(): Promise<void> {
    // First this consumer's own pending entries (a restart under the same name), then new ones.
    let pendingOwn = true
    let nextClaim = 0
    // Up to IN_FLIGHT batches in flight: the next one is read and prepared while Redis works on the ones
    // before (the writer runs their phases in order). Each is acknowledged when its own writes are done.
    const inflight: Promise<void>[] = []
    // And the batch after them is read ahead: Redis sends a reply of ~10 MB 64 KB per turn of its event
    // loop, between chunks of the writes in hand, so a read made once the writes were sent took about a
    // second (BENCHMARKS.md), which this process spent idle. Entries read ahead are this consumer's pending ones:
    // applied next, or taken back by a restart or XAUTOCLAIM if the process dies first.
    let ahead: Promise<RawEntry[]> | null = null
    const drain = async () => {
      while (inflight.length > 0) await inflight.shift()
    }
    for (let attempt = 1; d.running(); ) {
      try {
        // While Redis refuses work, read nothing more: the batches in hand retry until it takes them.
        if (faults.state() !== null) await drain()
        if (Date.now() >= nextClaim) {
          await drain()
          nextClaim = Date.now() + config.claimIntervalMs
          await claim()
        }
        if (pendingOwn) {
          await drain()
          const own = await group.read('0', false)
          if (own.length === 0) pendingOwn = false
          else await applyEntries(own)
          continue
        }
        const reading = ahead ?? group.read('>', true)
        ahead = null
        const entries = await reading
        attempt = 1
        if (entries.length === 0) {
          // Redis answered and there is nothing to write: whatever made a read fail is over.
          faults.succeeded()
          continue
        }
        if (d.running() && faults.state() === null) {
          ahead = group.read('>', true)
          // awaited later; until then a failure must not count as unhandled
          ahead.catch(() => {})
        }
        const job = applyEntries(entries)
        // awaited in turn; one that fails while an older one is awaited must not count as unhandled
        job.catch(() => {})
        inflight.push(job)
        while (inflight.length >= IN_FLIGHT) await inflight.shift()
      } catch (err) {
        if (!d.running() || err instanceof IndexerStopping) break
        // A read or claim failed (NOGROUP among them: the handler creates the group again).
        await faults.failed(err, attempt++, 'reading the stream').catch(() => {})
      }
    }
    for (const r of await Promise.allSettled(inflight.splice(0)))
      if (r.status === 'rejected') stoppedOnly(r.reason)
    const last = ahead ? await (ahead as Promise<RawEntry[]>).catch(() => []) : []
    if (last.length > 0) await applyEntries(last).catch(stoppedOnly)
  }

  return run()
}

/** A batch given up because the service closes stays pending: not an error of close(). */
function stoppedOnly(err: unknown): void {
  if (!(err instanceof IndexerStopping)) throw err
}
