import {
  type EventColumns,
  eventAt,
  type InteractionCreate,
  type InteractionDelete,
} from '@circles/core'
import { resolveIds } from '../did-table.js'
import {
  CODE_INBOUND,
  decodeRecord,
  encodeRecord,
  KIND_CODES,
  rkeyBytes,
  spillHour,
} from '../layout.js'
import type { Account } from './accounts.js'
import type { WriterContext } from './context.js'
import { OP, type Phase } from './ops.js'
import type { SegmentPlan } from './plan.js'
import type { ApplyStats } from './stats.js'

// Phase C of a segment, built from phase M's outcome: revoke the side of a create that the other side
// refused (deleted before it arrived, or an account purged), and the subject side of what the deletes
// marked.

/** A record a delete of row `row` marked on its author's side. */
export interface Removal {
  row: number
  rec: Buffer
}

/** Counts phase M's outcome per create, and revokes into `c` the side that the other side refused. */
export function revokeRefused(
  ctx: WriterContext,
  cols: EventColumns,
  p: SegmentPlan,
  stats: ApplyStats,
  c: Phase,
): void {
  const { accounts } = ctx
  const { results, creates } = p
  for (let index = 0; index < p.nCreates; index++) {
    const inResult = results[2 * index] as number
    const outResult = results[2 * index + 1] as number
    if (inResult === -1 || outResult === -1) stats.refused++
    else if (outResult === 1) stats.added++
    else stats.duplicates++
    if ((inResult === -1) === (outResult === -1)) continue
    // Rare: rebuild what phase M wrote from the event (both accounts are in the map: phase M got them).
    const e = eventAt(cols, creates[index] as number) as InteractionCreate
    const author = accounts.get(e.author) as Account
    const subject = accounts.get(e.subject) as Account
    const hour = spillHour(e.rkey, e.time)
    const rkey8 = rkeyBytes(e.rkey)
    if (inResult === -1) {
      // The subject was purged after this interaction: take back the author side.
      const out = encodeRecord({
        rkey8,
        code: KIND_CODES[e.kind],
        partner: subject.info.id,
        sec: 0,
        chars: 0,
      })
      c.account(author).addRecord(OP.revoke, hour, out)
    } else {
      // Deleted before this create arrived (or the author purged): take back the subject side.
      const inRec = encodeRecord({
        rkey8,
        code: KIND_CODES[e.kind] | CODE_INBOUND,
        partner: author.info.id,
        sec: Math.floor(e.time / 1000) >>> 0,
        chars: e.chars,
      })
      c.account(subject).addRecord(OP.revoke, hour, inRec)
    }
  }
}

/** Revokes into `c` the subject sides of what the deletes marked (`removals`, not empty). */
export async function revokeDeleted(
  ctx: WriterContext,
  cols: EventColumns,
  removals: readonly Removal[],
  stats: ApplyStats,
  c: Phase,
): Promise<void> {
  const { accounts } = ctx
  const dids = await resolveIds(
    ctx.redis,
    ctx.schema,
    removals.map((x) => x.rec.toString('latin1', 9, 17)),
    ctx.cache,
  )
  for (const { row, rec } of removals) {
    const d = eventAt(cols, row) as InteractionDelete
    const f = decodeRecord(rec, 0)
    const did = dids.get(f.partner.toString('latin1'))
    const subject = did === undefined ? undefined : accounts.get(did)
    if (!subject) continue
    stats.removed++
    const inRec = encodeRecord({
      rkey8: f.rkey8,
      code: (f.code & 3) | CODE_INBOUND,
      partner: (accounts.get(d.author) as Account).info.id,
      sec: f.sec,
      chars: f.chars,
    })
    c.account(subject).addRecord(OP.revoke, spillHour(d.rkey, f.sec * 1000), inRec)
  }
}
