import { HOUR_MS } from '@circles/core'
import type { DidInfo } from '../did-cache.js'
import { resolveIds } from '../did-table.js'
import {
  CODE_DELETED,
  CODE_INBOUND,
  CODE_UNKNOWN,
  decodeRecord,
  encodeRecord,
  forEachRecord,
  RECORD_SIZE,
} from '../layout.js'
import type { WriterContext } from './context.js'
import { OP, Phase } from './ops.js'
import { sendPhase } from './send.js'

const ZERO_ID = Buffer.alloc(8)

/** A record of the purged account, and its partner's id (8 latin1 characters). */
interface PartnerRecord {
  partnerKey: string
  rec: Buffer
}

/**
 * Purge of a DID (account deleted or taken down) at `timeMs`: (1) mark it, so that its interactions up to
 * then are refused from now on; (2) remove every partner's record of those interactions; (3) drop its own
 * records up to then. Interactions after `timeMs` stay: a purge applied late (another process, a
 * reclaimed entry) must not take away what a reactivated account did after it. Each step is idempotent.
 */
export async function purge(ctx: WriterContext, did: string, timeMs: number): Promise<void> {
  const { redis, schema } = ctx
  const target = ctx.accounts.get(did)
  if (!target) return
  const nowMs = ctx.now()
  const nowHour = Math.floor(nowMs / HOUR_MS)
  const sec = Math.max(0, Math.floor(timeMs / 1000))
  const mark = encodeRecord({ rkey8: ZERO_ID, code: 0, partner: ZERO_ID, sec, chars: 0 })
  const first = new Phase(ctx.opsPool)
  first.account(target).addRecord(OP.mark, null, mark)
  await sendPhase(ctx, first, ctx.wire, nowMs)

  const hours: number[] = []
  for (let h = nowHour - ctx.keepHours - 2; h <= nowHour + 2; h++) hours.push(h)
  const logs = [schema.accountLog(did), ...hours.map((h) => schema.accountHourLog(did, h))]
  const values = await redis.mgetBuffer(...logs)
  await sendPhase(ctx, await partnersPhase(ctx, target.info, values, sec), ctx.wire, nowMs)

  const own = new Phase(ctx.opsPool)
  const account = own.account(target)
  values.forEach((v, i) => {
    if (v) account.addRecord(OP.purgeOwn, i === 0 ? null : (hours[i - 1] as number), mark)
  })
  await sendPhase(ctx, own, ctx.wire, nowMs)
  // The 48-hour index is clean: the scheduler forgets the rest (long-term aggregates, caches, lists).
  await redis.zadd(schema.forgetQueue, nowMs, did)
}

/** Step (2): the removal of every partner's record of the interactions in `values` up to `sec`. */
async function partnersPhase(
  ctx: WriterContext,
  self: DidInfo,
  values: readonly (Buffer | null)[],
  sec: number,
): Promise<Phase> {
  const { accounts } = ctx
  const outs: PartnerRecord[] = []
  const ins: PartnerRecord[] = []
  for (const v of values) {
    forEachRecord(v, (buf, off) => {
      const code = buf[off + 8] as number
      if (code & (CODE_DELETED | CODE_UNKNOWN)) return
      if (buf.readUInt32BE(off + 17) > sec) return
      const rec = Buffer.from(buf.subarray(off, off + RECORD_SIZE))
      const partnerKey = buf.toString('latin1', off + 9, off + 17)
      if (code & CODE_INBOUND) ins.push({ partnerKey, rec })
      else outs.push({ partnerKey, rec })
    })
  }
  const dids = await resolveIds(
    ctx.redis,
    ctx.schema,
    [...outs, ...ins].map((x) => x.partnerKey),
    ctx.cache,
  )
  const partners = new Phase(ctx.opsPool)
  const partnerOf = (key: string) => {
    const partnerDid = dids.get(key)
    return partnerDid === undefined ? undefined : accounts.get(partnerDid)
  }
  for (const { partnerKey, rec } of outs) {
    const partner = partnerOf(partnerKey)
    if (!partner) continue
    const f = decodeRecord(rec, 0)
    const inRec = encodeRecord({ ...f, code: (f.code & 3) | CODE_INBOUND, partner: self.id })
    partners.account(partner).addRecord(OP.removeIn, Math.floor(f.sec / 3600), inRec)
  }
  for (const { partnerKey, rec } of ins) {
    const partner = partnerOf(partnerKey)
    if (!partner) continue
    const f = decodeRecord(rec, 0)
    const outRec = encodeRecord({ ...f, code: f.code & 3, partner: self.id })
    partners.account(partner).addRecord(OP.removeOut, Math.floor(f.sec / 3600), outRec)
  }
  return partners
}
