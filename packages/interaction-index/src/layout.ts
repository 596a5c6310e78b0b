import { createHash, hash } from 'node:crypto'
import { HOUR_MS, type InteractionKind, isValidTid, tidTimestampMs } from '@circles/core'

// The live index stores every interaction as one fixed-size binary record, twice: an outbound record in the
// author's log and an inbound record in the subject's log. A log is a plain Redis string per account
// (`accountLog`), plus one spill string per hour (`accountHourLog`) for accounts whose log is full. Strings
// cost nothing per record beyond the record itself (a listpack hash costs 4-6 bytes per entry and turns into
// a 60-byte-per-entry hashtable past its limits), and a read is one MGET that Node decodes with Buffer
// reads instead of parsing tens of thousands of RESP bulk strings.
//
// A log: a 20-byte header followed by 23-byte records. Header: uint32 BE seconds of its oldest record (so
// the writer knows when to compact it without scanning it); uint32 BE seconds of its newest record (which
// sets the key's expiry without an EXPIRETIME round); the greatest rkey it ever held, 8 bytes as in a record
// (a new record above it cannot be a duplicate: TIDs grow with time, so most appends skip the duplicate
// search); two uint16 BE: inbound and outbound records appended since the last compaction (which decide
// when a main log spills). In a main log, bit 15 of the outbound count says that the account has spilled
// (the writer reads spill logs only for accounts that have them; the main log's newest second covers
// theirs, so that it outlives them) and bit 15 of the inbound count that it has a purge mark (the writer
// reads the mark only then). Older logs have a 12-byte header (no greatest rkey) or an 8-byte one (nor newest
// second): readers find the header size as the length modulo 23 (20, 12 or 8), and the writer rewrites such
// a log with the current header the next time it touches it. Records:
//   [0..8)   rkey as 8 bytes: a TID's 64 bits little-endian (the varying low bits first, so Lua's plain
//            string.find rejects non-matches on the first byte), any other rkey the first 8 bytes of a hash
//   [8]      code: bits 0-1 kind (like, repost, reply, quote), bit 2 inbound, bit 3 deleted (a tombstone
//            that keeps partner and time), bit 4 tombstone of a delete that found nothing (bits 0-1 are
//            then the record type: like, repost, post; partner is zero)
//   [9..17)  partner id: the 8-byte id of the subject (outbound) or the author (inbound)
//   [17..21) event time in seconds, uint32 BE
//   [21..23) characters of the post text (replies and quotes), uint16 BE, saturated
// DIDs become 8-byte ids: the first 8 bytes of SHA-1(DID). Ids need no lookup to compute (no intern round
// trip, no order dependence: two runs over the same stream write the same bytes) and the `didTable`
// hashes map them back to DIDs for reads.

export const HEADER_SIZE = 20
export const RECORD_SIZE = 23
export const CODE_INBOUND = 4
export const CODE_DELETED = 8
export const CODE_UNKNOWN = 16

/** The live window: reads count the last 48 hours. */
export const WINDOW_HOURS = 48
/** Records older than the window plus this are compacted away once the roll-up has folded their hour. */
export const EDGE_SECONDS = (WINDOW_HOURS + 1) * 3600
/** Hours an hour the roll-up has not folded yet is kept after it left the window (`INDEX_ROLLUP_GRACE_HOURS`). */
export const DEFAULT_ROLLUP_GRACE_HOURS = 6

/** Seconds a record is kept after its hour ends (key expiry): the window plus the roll-up grace. */
export function keepSeconds(graceHours: number): number {
  return (WINDOW_HOURS + graceHours) * 3600
}

/** Buckets of the DID table (id -> DID hashes). Part of the layout: every process must agree. */
export const DID_TABLE_BUCKETS = 8192
/** Shards of each hour's author index. Part of the layout. */
export const HOUR_AUTHOR_SHARDS = 128

export const KIND_CODES: Record<InteractionKind, number> = {
  like: 0,
  repost: 1,
  reply: 2,
  quote: 3,
}
export const CODE_KINDS: readonly InteractionKind[] = ['like', 'repost', 'reply', 'quote']
/** Record types of deletes, as they appear in bits 0-1 of an unknown tombstone. */
export const RECORD_TYPE_CODES = { like: 0, repost: 1, post: 2 } as const

/** base32-sortable character code -> value (-1: not one); TIDs are 13 of them. */
export const S32_VALUE = new Int8Array(128).fill(-1)
for (const [i, c] of [...'234567abcdefghijklmnopqrstuvwxyz'].entries()) {
  S32_VALUE[c.charCodeAt(0)] = i
}

/** Writes the 8-byte form of an rkey at `off`. */
export function writeRkey(rkey: string, out: Buffer, off: number): void {
  if (isValidTid(rkey)) writeTid(Buffer.from(rkey, 'latin1'), 0, out, off)
  else sha1(`rkey:${rkey}`).copy(out, off, 0, 8)
}

/** `writeRkey` of a valid TID, given as the 13 bytes of `rkey` from `start`. */
export function writeTid(rkey: Buffer, start: number, out: Buffer, off: number): void {
  // 13 base32 characters = 65 bits whose top bit is zero: split into 35 + 30 bits, both exact doubles.
  let a = 0
  for (let i = start; i < start + 7; i++) a = a * 32 + (S32_VALUE[rkey[i] as number] as number)
  let b = 0
  for (let i = start + 7; i < start + 13; i++) b = b * 32 + (S32_VALUE[rkey[i] as number] as number)
  out.writeUInt32LE(((a % 4) * 2 ** 30 + b) >>> 0, off)
  out.writeUInt32LE(Math.floor(a / 4) >>> 0, off + 4)
}

/** SHA-1 of a string: the one-shot `crypto.hash` (Node >= 20.12) costs a third less than createHash. */
const sha1: (s: string) => Buffer =
  typeof hash === 'function'
    ? (s) => hash('sha1', s, 'buffer') as Buffer
    : (s) => createHash('sha1').update(s).digest()

export function rkeyBytes(rkey: string): Buffer {
  const b = Buffer.allocUnsafe(8)
  writeRkey(rkey, b, 0)
  return b
}

/** The 8-byte id of a DID. */
export function didId(did: string): Buffer {
  // copied out of the digest into the shared pool: a digest has a backing store of its own (~200 bytes
  // held per cached id, not 8)
  const id = Buffer.allocUnsafe(8)
  sha1(did).copy(id, 0, 0, 8)
  return id
}

export function didTableBucket(id: Buffer): number {
  return id.readUInt16BE(0) % DID_TABLE_BUCKETS
}

export function hourAuthorShard(id: Buffer): number {
  return (id[7] as number) % HOUR_AUTHOR_SHARDS
}

/** The id as a signed 64-bit decimal: Redis keeps such set members as int64 in an intset (8 bytes). */
export function idDecimal(id: Buffer): string {
  return id.readBigInt64BE(0).toString()
}

export function idFromDecimal(s: string): Buffer {
  const b = Buffer.allocUnsafe(8)
  b.writeBigInt64BE(BigInt(s), 0)
  return b
}

/** How the DID table stores a DID: a did:plc without its prefix (24 characters), anything else whole. */
export function packDidText(did: string): string {
  return did.startsWith('did:plc:') ? did.slice(8) : did
}

export function unpackDidText(text: string): string {
  return text.startsWith('did:') ? text : `did:plc:${text}`
}

/**
 * The hour whose spill log may hold a record, or null when only the main log can. A record goes to the
 * spill log of its TID's hour, and only when that is also its event hour, so that a delete (which knows
 * only the rkey) finds it in exactly two places: the main log and this hour's spill log.
 */
export function spillHour(rkey: string, timeMs?: number): number | null {
  if (!isValidTid(rkey)) return null
  const h = Math.floor(tidTimestampMs(rkey) / HOUR_MS)
  if (timeMs !== undefined && Math.floor(timeMs / HOUR_MS) !== h) return null
  return h
}

export interface RecordFields {
  rkey8: Buffer
  code: number
  partner: Buffer
  sec: number
  chars: number
}

export function encodeRecord(
  r: RecordFields,
  out: Buffer = Buffer.allocUnsafe(RECORD_SIZE),
  off = 0,
) {
  r.rkey8.copy(out, off, 0, 8)
  out[off + 8] = r.code
  r.partner.copy(out, off + 9, 0, 8)
  out.writeUInt32BE(r.sec >>> 0, off + 17)
  out.writeUInt16BE(Math.min(r.chars, 65535), off + 21)
  return out
}

export function decodeRecord(buf: Buffer, off: number): RecordFields {
  return {
    rkey8: buf.subarray(off, off + 8),
    code: buf[off + 8] as number,
    partner: buf.subarray(off + 9, off + 17),
    sec: buf.readUInt32BE(off + 17),
    chars: buf.readUInt16BE(off + 21),
  }
}

/** Where the records of a log value start: after its header (20 bytes, or 12 or 8 in older formats). */
export function recordsStart(log: Buffer): number {
  return log.length % RECORD_SIZE
}

/** Calls `fn(offset)` for every record of a log value (main or spill). */
export function forEachRecord(log: Buffer | null, fn: (buf: Buffer, off: number) => void): void {
  if (!log) return
  for (let off = recordsStart(log); off + RECORD_SIZE <= log.length; off += RECORD_SIZE)
    fn(log, off)
}
