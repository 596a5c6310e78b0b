import type { RedisSchema } from '@circles/redis-schema'
import { encodeBulks, type Frame } from '@circles/redis-wire'
import { RECORD_SIZE } from '../layout.js'
import { INDEX_APPLY_FUNCTION } from '../scripts.js'
import { type AccountOps, MAX_SECTION_OPS, OP, OP_SIZE, type Phase } from './ops.js'

// A phase goes to Redis as script calls, one per cluster slot, each with the sections of the accounts of its
// slot: an account's operations as they are, or, when they allow it, as a section of appends (the layouts
// are described in lua/index-apply.lua).

const APPENDS_HEAD = 14
const OPS_HEAD = 4

/**
 * Whether an account's operations can go as a section of appends (lua/index-apply.lua): creates only, and
 * each direction strictly ascending by rkey (then the first record of each is its least, which is all the
 * script compares with what the logs hold). Returns the least and greatest second, or null.
 */
function appendsSpan(a: AccountOps): [number, number] | null {
  const ops = a.ops
  const n = a.refs.length
  if (n > MAX_SECTION_OPS) return null
  let inHi = -1
  let inLo = -1
  let outHi = -1
  let outLo = -1
  let min = 0xffffffff
  let max = 0
  for (let off = 0; off < n * OP_SIZE; off += OP_SIZE) {
    const code = ops[off]
    // rkeys are 64-bit little-endian: compare the high halves, then the low ones
    const lo = ops.readUInt32LE(off + 2)
    const hi = ops.readUInt32LE(off + 6)
    if (code === OP.addIn) {
      if (hi < inHi || (hi === inHi && lo <= inLo)) return null
      inHi = hi
      inLo = lo
    } else if (code === OP.addOut) {
      if (hi < outHi || (hi === outHi && lo <= outLo)) return null
      outHi = hi
      outLo = lo
    } else return null
    const sec = ops.readUInt32BE(off + 19)
    if (sec < min) min = sec
    if (sec > max) max = sec
  }
  return [min, max]
}

/** Writes an account's operations as a section of appends: inbound records, outbound ones, spill indexes. */
function writeAppends(
  a: AccountOps,
  span: [number, number],
  blob: Buffer,
  at: number,
  refs: number[],
): number {
  const n = a.refs.length
  const ops = a.ops
  let nIn = 0
  for (let off = 0; off < n * OP_SIZE; off += OP_SIZE) if (ops[off] === OP.addIn) nIn++
  blob[at] = a.keyCount
  blob[at + 1] = 1
  blob.writeUInt16BE(nIn, at + 2)
  blob.writeUInt16BE(n - nIn, at + 4)
  blob.writeUInt32BE(span[0], at + 6)
  blob.writeUInt32BE(span[1], at + 10)
  let rec = at + APPENDS_HEAD
  let hk = rec + n * RECORD_SIZE
  for (const code of [OP.addIn, OP.addOut]) {
    for (let j = 0, off = 0; j < n; j++, off += OP_SIZE) {
      if (ops[off] !== code) continue
      // a byte loop: Buffer#copy costs more than it moves for 23 bytes
      for (let k = off + 2; k < off + OP_SIZE; k++) blob[rec++] = ops[k] as number
      blob[hk++] = ops[off + 1] as number
      refs.push(a.refs[j] as number)
    }
  }
  return hk
}

const slotStarts = new Int32Array(16385)

/** The accounts ordered by cluster slot, each slot's in phase order (a counting sort: no array per slot). */
function bySlot(accounts: readonly AccountOps[]): AccountOps[] {
  slotStarts.fill(0)
  for (const a of accounts) (slotStarts[a.slot + 1] as number)++
  for (let s = 1; s <= 16384; s++)
    slotStarts[s] = (slotStarts[s] as number) + (slotStarts[s - 1] as number)
  const out = new Array<AccountOps>(accounts.length)
  for (const a of accounts) out[(slotStarts[a.slot] as number)++] = a
  return out
}

const FCALL_HEAD = encodeBulks('FCALL', INDEX_APPLY_FUNCTION)

/**
 * Writes a phase's accounts into the frame as script calls, one per cluster slot. `refs` gets every
 * operation's ref in the order of the calls' results, `ends` where each call's refs end.
 */
export function writeCalls(
  phase: Phase,
  schema: RedisSchema,
  frame: Frame,
  /** horizon, cap and keep, encoded */
  args: Buffer,
  appendSections: boolean,
  refs: number[],
  ends: number[],
): void {
  const accounts = bySlot(phase.accounts)
  const spans: ([number, number] | null)[] = new Array(accounts.length)
  for (let i = 0; i < accounts.length; ) {
    const slot = (accounts[i] as AccountOps).slot
    let size = 0
    let keyCount = 1
    let j = i
    for (; j < accounts.length && (accounts[j] as AccountOps).slot === slot; j++) {
      const a = accounts[j] as AccountOps
      const span = appendSections ? appendsSpan(a) : null
      spans[j] = span
      if (span) {
        size += APPENDS_HEAD + a.refs.length * (RECORD_SIZE + 1)
        keyCount += a.keyCount
      } else {
        const sections = Math.max(1, Math.ceil(a.refs.length / MAX_SECTION_OPS))
        size += a.length + OPS_HEAD * sections
        keyCount += a.keyCount * sections
      }
    }
    frame.command(3 + keyCount + 4)
    frame.raw(FCALL_HEAD)
    frame.int(keyCount)
    // KEYS[1]: the call's scratch key (any account's works: they all hash to this slot)
    const first = (accounts[i] as AccountOps).owner
    first.scratch ??= encodeBulks(schema.accountScratch(first.info.did))
    frame.raw(first.scratch)
    for (let k = i; k < j; k++) {
      const a = accounts[k] as AccountOps
      const sections = spans[k] ? 1 : Math.max(1, Math.ceil(a.refs.length / MAX_SECTION_OPS))
      for (let s = 0; s < sections; s++) {
        frame.raw(a.owner.keys)
        for (const hour of a.hourKeys) frame.bulkWithNumber(a.owner.hourPrefix, hour)
      }
    }
    frame.raw(args)
    let at = frame.reserve(size)
    const blob = frame.buf
    for (let k = i; k < j; k++) {
      const a = accounts[k] as AccountOps
      const span = spans[k]
      if (span) {
        at = writeAppends(a, span, blob, at, refs)
        continue
      }
      // an account with more operations than a section holds takes several sections in a row
      for (let first = 0; first === 0 || first < a.refs.length; first += MAX_SECTION_OPS) {
        const count = Math.min(MAX_SECTION_OPS, a.refs.length - first)
        blob[at] = a.keyCount
        blob[at + 1] = 0
        blob.writeUInt16BE(count, at + 2)
        at += OPS_HEAD
        at += a.ops.copy(blob, at, first * OP_SIZE, (first + count) * OP_SIZE)
        for (let r = first; r < first + count; r++) refs.push(a.refs[r] as number)
      }
    }
    ends.push(refs.length)
    i = j
  }
}
