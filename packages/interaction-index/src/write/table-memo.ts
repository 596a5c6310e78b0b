import { rememberDids } from '../did-table.js'
import { didTableBucket, packDidText } from '../layout.js'
import type { Account } from './accounts.js'
import type { WriterContext } from './context.js'

// The DID table forgets: the scheduler deletes the entries of purged accounts that have no data left
// (services/scheduler/src/forget-table.ts), in this order: check the account has no data, HDEL its
// entry, INCR `didTableEpoch`, check again and write back the entry of one that has data now. A writer
// that remembers having written an entry (`inTable`) skips the HSET; so each call reads the epoch after
// its appends, in the same pipeline, and when it is not the value its memos were made under, writes the
// entries of every account its creates name once more (after that read) and forgets all other memos.
// Why no account is left with records and no entry: an append that reached Redis before the reclaim's
// second check is seen by it, and its entry written back. One after it comes after the INCR, so the
// call's epoch read sees the new value; the call then writes its entries again after that, unless its
// memos were made under that value already, which means this process read it before building the call,
// and every entry it remembers since was written after that read, so after the HDEL.
// The epoch as last read after a call's appends is `WriterContext#tableEpoch` (null: not read yet,
// nothing remembered is proven).

/** Writes the DID table entries of `tabled` again after the epoch moved to `epoch` (see above). */
export async function writeTableAgain(
  ctx: WriterContext,
  tabled: readonly Account[],
  epoch: string,
): Promise<void> {
  if (ctx.tableEpoch !== epoch) {
    ctx.tableEpoch = epoch
    ctx.accounts.forgetTable()
  }
  for (const a of tabled) a.inTable = false
  await rememberDids(
    ctx.redis,
    ctx.schema,
    tabled.map((a) => a.info.did),
  )
  // Remembered only if no later call has seen the epoch move again meanwhile.
  if (ctx.tableEpoch === epoch) for (const a of tabled) a.inTable = true
}

/**
 * Queues the DID table entry of a DID this process has not written yet, grouped by bucket; `tabled` gets
 * every account the segment's creates name (once).
 */
export function rememberTable(
  a: Account,
  table: Map<number, (string | Buffer)[]>,
  marks: Account[],
  tabled: Account[],
  segment: number,
) {
  if (a.tabledIn !== segment) {
    a.tabledIn = segment
    tabled.push(a)
  }
  if (a.inTable) return
  a.inTable = true
  marks.push(a)
  const bucket = didTableBucket(a.info.id)
  const fields = table.get(bucket)
  if (fields) fields.push(a.info.id, packDidText(a.info.did))
  else table.set(bucket, [a.info.id, packDidText(a.info.did)])
}
