import { randomInt } from 'node:crypto'
import {
  columnsOf,
  EVENT_CREATE,
  EVENT_DELETE,
  EVENT_OTHER,
  type EventColumns,
  eventAt,
  HOUR_MS,
  type InteractionCreate,
  type InteractionDelete,
  isPurgeStatus,
  isValidDid,
  isValidHandle,
  isValidRkey,
  type PrivacyEvent,
  type StreamEvent,
} from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import { DidCache, type DidInfo } from './did-cache.js'
import { resolveIds } from './did-table.js'
import {
  CODE_DELETED,
  CODE_INBOUND,
  CODE_UNKNOWN,
  DEFAULT_ROLLUP_GRACE_HOURS,
  decodeRecord,
  didTableBucket,
  EDGE_SECONDS,
  encodeRecord,
  forEachRecord,
  hourAuthorShard,
  idDecimal,
  KIND_CODES,
  keepSeconds,
  packDidText,
  RECORD_SIZE,
  rkeyBytes,
  S32_VALUE,
  spillHour,
  WINDOW_HOURS,
  writeRkey,
  writeTid,
} from './layout.js'
import { rememberDids } from './long-term.js'
import { changeOptOuts, clearPurgeMarks, optOutChanges } from './opt-outs.js'
import { INDEX_APPLY_FUNCTION, INDEX_LIBRARY_CODE, isLibraryMissing } from './scripts.js'
import { keySlot } from './slot.js'
import { encodeBulks, Frame, Wire, WireError } from './wire.js'

export interface IndexWriterOptions {
  /** Clock in ms (tests move it). @default Date.now */
  now?: () => number
  /**
   * Byte size of an account's main log before its records spill into per-hour logs. Bigger saves keys
   * (memory) for middling accounts; smaller keeps each script's string search short.
   * @default 8192
   */
  mainLogBytes?: number
  /**
   * Hours an hour that the scheduler's roll-up has not folded yet is kept after it left the 48-hour window
   * (key expiry and compaction wait for the roll-up's cursor this long). Reads still count 48 hours.
   * @default 24
   */
  rollupGraceHours?: number
  /**
   * Send each account's creates as one section of appends when they allow it (see the script). Off, every
   * operation takes the general path: tests compare the two.
   * @default true
   */
  appendSections?: boolean
}

/** How long the roll-up cursor read by the writer is trusted before it is read again (one GET). */
const CURSOR_MAX_AGE_MS = 60_000

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

export interface IndexWriter {
  /**
   * Applies events in order. Idempotent and safe under reordering across calls and processes: applying the
   * same events again, or a create after its delete, leaves the index as if each applied once in order.
   * Throws only when Redis fails (then nothing is lost: apply the same events again). Calls may overlap
   * (the next one started before the previous one resolved): their phases still run in call order.
   */
  apply(events: readonly StreamEvent[]): Promise<ApplyStats>
  /** `apply` of events decoded into columns (what the indexer service reads off the stream). */
  applyColumns(cols: EventColumns): Promise<ApplyStats>
  /**
   * Removes a DID from the index in both directions and refuses its older interactions from now on; then
   * queues it for the scheduler to forget the rest (`schema.forgetQueue`).
   */
  purge(did: string, timeMs: number): Promise<void>
  /**
   * `purge` ordered with apply() calls as a purge event of the stream is (after every earlier call, with
   * none beside it). `timeMs` = FOREVER_MS closes the index to the account until `reopen`.
   */
  purgeInTurn(did: string, timeMs: number): Promise<void>
  /** Takes an account closed by a purge up to FOREVER_MS back: interactions from now on count again. */
  reopen(did: string): Promise<void>
  /**
   * How many times a connection of the writer (its own, or the Redis client it was given) was lost. Redis
   * may have restarted then and lost writes it had already answered (appendfsync everysec), so a caller
   * that acknowledges what it applied (XACK) compares this before the call and after the acknowledgement's
   * reply: if it moved, the acknowledgement may have reached a Redis without the writes, and the events
   * are applied again.
   */
  connectionLosses(): number
  /**
   * Forgets what the writer remembers having written (DID table entries, hour index members, hours, the
   * function library) and counts a connection loss, as when a connection is lost: for a caller that learns
   * in another way that Redis lost data (the indexer's consumer group vanished: FLUSHALL, a restart without
   * persistence). Calls in flight then fail, to be applied again.
   */
  forget(): void
  /**
   * Closes the writer's own connections (its phases go to Redis on connections of their own, see wire.ts)
   * once the calls in flight have their replies. The Redis client passed in stays the caller's.
   */
  close(): Promise<void>
}

const OP_SIZE = 2 + RECORD_SIZE
/** The ref of an operation whose outcome nobody needs. */
const NO_REF = Number.MIN_SAFE_INTEGER
/** Operations of one account in one section of a script call (the count is a uint16). */
const MAX_SECTION_OPS = 65535

/**
 * The operations of one phase on one account, written straight into one buffer. Reused: once its phase is
 * sent (copied into the script calls), it goes back to the writer's pool with its arrays and buffer.
 */
class AccountOps {
  hours: Map<number, number> | null = null
  /** Keys of the section after the main log and the purge mark: spill logs (key index 3, 4, ...), by hour. */
  readonly hourKeys: number[] = []
  ops: Buffer = Buffer.allocUnsafe(OP_SIZE * 2)
  length = 0
  /** Per operation, a number the phase's result handler understands. */
  readonly refs: number[] = []
  slot: number

  constructor(public owner: Account) {
    this.slot = owner.slot
  }

  reset(owner: Account): void {
    this.owner = owner
    this.slot = owner.slot
    this.hourKeys.length = 0
    this.refs.length = 0
    this.length = 0
    this.hours?.clear()
  }

  /** Keys of the section: main log, purge mark, spill logs. */
  get keyCount(): number {
    return 2 + this.hourKeys.length
  }

  /** Reserves an operation and returns the offset where its 23-byte record goes. */
  add(code: number, hour: number | null, ref: number): number {
    let hk = 0
    if (hour !== null) {
      this.hours ??= new Map()
      let i = this.hours.get(hour)
      if (i === undefined) {
        this.hourKeys.push(hour)
        i = this.keyCount
        this.hours.set(hour, i)
      }
      hk = i
    }
    if (this.length + OP_SIZE > this.ops.length) {
      const bigger = Buffer.allocUnsafe(this.ops.length * 4)
      this.ops.copy(bigger, 0, 0, this.length)
      this.ops = bigger
    }
    const off = this.length
    this.ops[off] = code
    this.ops[off + 1] = hk
    this.length += OP_SIZE
    this.refs.push(ref)
    return off + 2
  }

  addRecord(code: number, hour: number | null, record: Buffer, ref = NO_REF): void {
    const off = this.add(code, hour, ref)
    record.copy(this.ops, off, 0, RECORD_SIZE)
  }
}

const OP = {
  addIn: 0x69, // i
  addOut: 0x6f, // o
  del: 0x64, // d
  delOld: 0x44, // D
  removeIn: 0x72, // r
  revoke: 0x76, // v
  removeOut: 0x78, // x
  mark: 0x6d, // m
  purgeOwn: 0x7a, // z
} as const

/** What the writer keeps about an account between batches (one Map lookup per DID of an event). */
interface Account {
  info: DidInfo
  /** Where its DID's bytes are in the accounts' arena. */
  didOff: number
  didLen: number
  /** Its main log and purge mark as RESP bulk strings: copied into every section of the account. */
  keys: Buffer
  /** Its scratch key as a RESP bulk string, once needed. */
  scratch: Buffer | null
  /** `schema.accountHourLogPrefix` of its DID, latin1: its spill log keys are this and the hour. */
  hourPrefix: Buffer
  /** Its id as two int32 (big-endian halves): written into records without reading a Buffer. */
  idHi: number
  idLo: number
  /** The latest hour whose author index this process added the account to (-1: none). */
  indexedHour: number
  slot: number
  /** The account's operations in the phase being built (phase id `phase`). */
  ops: AccountOps | null
  phase: number
  /** The id as a signed decimal (hour index member), once needed. */
  decimal: string | null
  /** Its DID table entry was written by this process. */
  inTable: boolean
  /** The latest segment whose creates name it (`tabled` of applySegment). */
  tabledIn: number
}

/** Accounts kept at most (clearing them when full only costs recomputing names and hashes). */
const MAX_ACCOUNTS = 500_000
const TABLE_BITS = 20

/**
 * Accounts by DID, found by the DID's bytes in a stream entry: an open-addressing table over a byte arena,
 * so that decoding a batch makes no DID string (a Map keyed by strings cost a slice and a hash of one per
 * lookup, and kept ~10^5 of them alive across a batch's round trips).
 */
class Accounts {
  private readonly slots = new Int32Array(1 << TABLE_BITS)
  private readonly hashes = new Int32Array(1 << TABLE_BITS)
  private list: Account[] = []
  private arena = Buffer.allocUnsafe(1 << 22)
  private arenaAt = 0
  // seeded: the probe sequence of a DID is not known in advance to whoever makes up DIDs
  private readonly seed = randomInt(0x7fffffff)
  private readonly scratch = Buffer.allocUnsafe(2048)

  constructor(
    private readonly schema: RedisSchema,
    private readonly cache: DidCache,
  ) {}

  /** Forgets which accounts this process wrote to the DID table and to an hour's author index. */
  forgetWritten(): void {
    for (const a of this.list) {
      a.inTable = false
      a.indexedHour = -1
    }
  }

  /** Forgets which accounts this process wrote to the DID table (the table epoch moved). */
  forgetTable(): void {
    for (const a of this.list) a.inTable = false
  }

  /** The account of a valid DID; undefined for an invalid one. */
  get(did: string): Account | undefined {
    if (did.length > 1024) return undefined
    const n = this.scratch.write(did, 0, 'utf8')
    return this.find(this.scratch, 0, n)
  }

  /** The account of the DID in b[start, end) (UTF-8); undefined for an invalid one. */
  find(b: Buffer, start: number, end: number): Account | undefined {
    const len = end - start
    let h = this.seed ^ len
    for (let i = start; i < end; i++) h = Math.imul(h ^ (b[i] as number), 0x01000193)
    const mask = (1 << TABLE_BITS) - 1
    let slot = h & mask
    const arena = this.arena
    for (;;) {
      const id = this.slots[slot] as number
      if (id === 0) break
      if (this.hashes[slot] === h) {
        const a = this.list[id - 1] as Account
        if (a.didLen === len) {
          let k = 0
          while (k < len && arena[a.didOff + k] === b[start + k]) k++
          if (k === len) return a
        }
      }
      slot = (slot + 1) & mask
    }
    const did = b.toString('utf8', start, end)
    if (!isValidDid(did)) return undefined
    if (this.list.length >= MAX_ACCOUNTS || this.arenaAt + len > 64 * MAX_ACCOUNTS) {
      this.slots.fill(0)
      this.list = []
      this.arenaAt = 0
      return this.find(b, start, end)
    }
    if (this.arenaAt + len > this.arena.length) {
      const bigger = Buffer.allocUnsafe(this.arena.length * 2)
      this.arena.copy(bigger, 0, 0, this.arenaAt)
      this.arena = bigger
    }
    b.copy(this.arena, this.arenaAt, start, end)
    const log = this.schema.accountLog(did)
    const info = this.cache.info(did)
    const a: Account = {
      info,
      didOff: this.arenaAt,
      didLen: len,
      keys: encodeBulks(log, this.schema.accountPurged(did)),
      scratch: null,
      hourPrefix: Buffer.from(this.schema.accountHourLogPrefix(did), 'latin1'),
      idHi: info.id.readInt32BE(0),
      idLo: info.id.readInt32BE(4),
      indexedHour: -1,
      slot: keySlot(log),
      ops: null,
      phase: 0,
      decimal: null,
      inTable: false,
      tabledIn: 0,
    }
    this.arenaAt += len
    this.list.push(a)
    this.slots[slot] = this.list.length
    this.hashes[slot] = h
    return a
  }
}

let phaseIds = 0
/** Events a batch's loop handles between two turns of the event loop (about 20 ms of work). */
const YIELD_EVERY = 4096
/** Pooled AccountOps kept at most (a phase of a full batch uses ~10^5). */
const MAX_POOLED = 200_000

class Phase {
  readonly id = ++phaseIds
  readonly accounts: AccountOps[] = []
  constructor(private readonly pool: AccountOps[]) {}

  account(a: Account): AccountOps {
    // An account met again after another phase was built in between gets a second section: still correct
    // (the script stores an account's keys at the end of each section).
    if (a.phase === this.id && a.ops) return a.ops
    let ops = this.pool.pop()
    if (ops) ops.reset(a)
    else ops = new AccountOps(a)
    a.ops = ops
    a.phase = this.id
    this.accounts.push(ops)
    return ops
  }

  opCount(): number {
    let n = 0
    for (const a of this.accounts) n += a.refs.length
    return n
  }

  /** After the phase is sent (nothing refers to its operations any more): back to the pool. */
  recycle(): void {
    for (const ops of this.accounts) {
      if (ops.owner.ops === ops) ops.owner.ops = null
      if (this.pool.length < MAX_POOLED) this.pool.push(ops)
    }
    this.accounts.length = 0
  }
}

const APPENDS_HEAD = 14
const OPS_HEAD = 4

/**
 * Whether an account's operations can go as a section of appends (see the script): creates only, and each
 * direction strictly ascending by rkey (then the first record of each is its least, which is all the
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
function writeCalls(
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

const ZERO_ID = Buffer.alloc(8)

/**
 * A TID's time in ms, or -1 for any other rkey: `isValidTid` and `tidTimestampMs` in one pass without a
 * regex (the hot loop asked both, up to three times per event).
 */
function tidMs(b: Buffer, start: number, end: number): number {
  if (end - start !== 13) return -1
  let micros = 0
  for (let i = 0; i < 13; i++) {
    const c = b[start + i] as number
    const v = c < 128 ? (S32_VALUE[c] as number) : -1
    if (v < 0 || (i === 0 && v > 15)) return -1
    if (i < 11) micros = micros * 32 + v
  }
  return Math.floor(micros / 1000)
}

/** `spillHour(rkey, timeMs)` of an rkey whose `tidMs` is `tms`. */
function spillHourOf(tms: number, timeMs?: number): number | null {
  if (tms < 0) return null
  const h = Math.floor(tms / HOUR_MS)
  return timeMs !== undefined && Math.floor(timeMs / HOUR_MS) !== h ? null : h
}

/** Spill hours stay within the window: a spill log outside it cannot exist (it expired or never was). */
function hourInRange(hour: number | null, nowHour: number, keepHours: number): number | null {
  if (hour === null || hour < nowHour - keepHours - 2 || hour > nowHour + 2) return null
  return hour
}

export function createIndexWriter(
  redis: Redis,
  schema: RedisSchema,
  opts: IndexWriterOptions = {},
): IndexWriter {
  const now = opts.now ?? Date.now
  const mainLogBytes = opts.mainLogBytes ?? 8192
  const appendSections = opts.appendSections ?? true
  // records of each direction the main log takes before spilling
  const mainLogCap = Math.max(1, Math.floor(mainLogBytes / RECORD_SIZE / 2))
  // The index library goes first in the next pipeline: at the start, and after Redis said it is missing
  // (a restart without persistence). The batch that failed is applied again by the caller, as after any
  // Redis failure.
  let loadLibrary = true
  // Two connections: phase M of each batch on `wire`, in call order; phase C (revokes, a few per batch) on
  // `lane`, so that it does not queue behind the next batch's phase M. A batch is done (acknowledged) when
  // its phase C is: behind the next phase M, Redis had nothing left to do while this process prepared the
  // batch after (a trace of the bench, 2026-11-22). C's operations are idempotent revokes of exact
  // records: their order against other batches' appends changes nothing.
  const wire = new Wire(redis.options, connectionLost)
  const lane = new Wire(redis.options, connectionLost)
  const cache = new DidCache()
  const accounts = new Accounts(schema, cache)
  // What this process remembers having written (DID table entries, hour index members, hours, the
  // library) spares most of those writes, and is true only of the Redis that answered them: one that
  // restarted may have lost the last second of what it answered (appendfsync everysec; a kill -9 while
  // its fsync runs). Redelivered entries would then skip writes that are gone (seen in the kill -9 test:
  // partners missing from answers, their DIDs missing from the table). So a lost connection, the only
  // sign of a restart, forgets all of it, and a call prepared before the loss is not sent after it.
  let losses = 0
  function connectionLost(): void {
    losses++
    loadLibrary = true
    accounts.forgetWritten()
    hoursSeen.clear()
  }
  redis.on('close', connectionLost)
  const opsPool: AccountOps[] = []
  // The end of the latest call of apply(); and, while a call with a purge is waiting or running, the end of
  // that call, which every later call waits for.
  let turnAll: Promise<void> = Promise.resolve()
  // Resolves when the latest call has sent its phase M (a call with a purge: when it is done).
  let sentTurn: Promise<void> = Promise.resolve()
  const graceHours = opts.rollupGraceHours ?? DEFAULT_ROLLUP_GRACE_HOURS
  if (!Number.isInteger(graceHours) || graceHours < 1) {
    throw new RangeError(`rollupGraceHours must be an integer >= 1, got ${graceHours}`)
  }
  const keep = keepSeconds(graceHours)
  const keepHours = WINDOW_HOURS + graceHours
  // The roll-up's cursor (last hour folded, null before the first roll-up), as last read, and when.
  let cursorHour: number | null = null
  let cursorAt = Number.NEGATIVE_INFINITY
  let cursorRead: Promise<void> | null = null

  function readCursor(nowMs: number): Promise<void> | null {
    if (nowMs - cursorAt < CURSOR_MAX_AGE_MS && nowMs >= cursorAt) return null
    cursorRead ??= redis
      .get(schema.rollupCursor)
      .then((v) => {
        const n = v === null ? Number.NaN : Number(v)
        cursorHour = Number.isSafeInteger(n) ? n : null
        cursorAt = nowMs
      })
      .finally(() => {
        cursorRead = null
      })
    return cursorRead
  }

  /**
   * Records older than this (seconds) are compacted away: those of hours the roll-up has folded once they
   * left the window (+1 h), the others only when the grace is over too. Before the first roll-up (no
   * cursor) everything is kept for the grace.
   */
  function horizonOf(nowMs: number): number {
    const nowSec = Math.floor(nowMs / 1000)
    const oldest = nowSec - keep
    if (cursorHour === null) return oldest
    return Math.max(oldest, Math.min(nowSec - EDGE_SECONDS, (cursorHour + 1) * 3600))
  }
  /** Hours this process has put in the index of hours (authors: `Account#indexedHour`). */
  const hoursSeen = new Set<number>()

  /**
   * Sends a phase as one pipeline (one script call per slot) and returns its outcome; `onResult(ref, code,
   * deleted)` gets each operation's outcome (1 applied, 0 already so, -1 refused) and, for deletes, the
   * records they marked. The pipeline is written to the connection before this returns its promise, so
   * phases sent one after the other run in Redis in that order. With `onEpoch`, the DID table epoch is read
   * after the script calls, in the same pipeline, and passed to it ('0' when unset).
   */
  function run(
    phase: Phase,
    via: Wire,
    nowMs: number,
    side: (string | Buffer | number)[][] = [],
    onResult?: (ref: number, code: number, deleted: Buffer[] | null) => void,
    onEpoch?: (epoch: string) => void,
  ): Promise<void> {
    if (phase.accounts.length === 0 && side.length === 0) return Promise.resolve()
    // room for every section's keys (main log, purge mark, a spill log) and operations: no regrowth
    const frame = new Frame(4096 + phase.accounts.length * 320 + phase.opCount() * (OP_SIZE + 1))
    if (loadLibrary) {
      frame.call('FUNCTION', 'LOAD', 'REPLACE', INDEX_LIBRARY_CODE)
      loadLibrary = false
    }
    for (const command of side) frame.call(...command)
    const before = frame.commands
    const args = encodeBulks(String(horizonOf(nowMs)), String(mainLogCap), String(keep))
    const refs: number[] = []
    const ends: number[] = []
    writeCalls(phase, schema, frame, args, appendSections, refs, ends)
    if (onEpoch) frame.call('GET', schema.didTableEpoch)
    // The accounts keep only the phase being built: a phase sent must not stay reachable from them.
    phase.recycle()
    return via.send(frame).then((results) => {
      for (const r of results) {
        if (!(r instanceof Error)) continue
        if (isLibraryMissing(r)) loadLibrary = true
        throw r
      }
      if (onEpoch) onEpoch(String(results[before + ends.length] ?? '0'))
      if (!onResult) return
      let start = 0
      ends.forEach((end, i) => {
        const [codes, deleted] = results[before + i] as [Buffer, Buffer]
        let marked: Map<number, Buffer[]> | null = null
        for (let off = 0; off + 4 + RECORD_SIZE <= deleted.length; off += 4 + RECORD_SIZE) {
          marked ??= new Map()
          const j = deleted.readUInt32BE(off)
          const list = marked.get(j) ?? []
          list.push(deleted.subarray(off + 4, off + 4 + RECORD_SIZE))
          marked.set(j, list)
        }
        for (let j = 0; j < end - start; j++) {
          const ref = refs[start + j] as number
          if (ref === NO_REF) continue
          const code = codes[j]
          onResult(ref, code === 0x31 ? 1 : code === 0x30 ? 0 : -1, marked?.get(j) ?? null)
        }
        start = end
      })
    })
  }

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
  // The epoch as last read after a call's appends (null: not read yet, nothing remembered is proven).
  let tableEpoch: string | null = null
  let segments = 0

  /** Writes the DID table entries of `tabled` again after the epoch moved to `epoch` (see above). */
  async function writeTableAgain(tabled: readonly Account[], epoch: string): Promise<void> {
    if (tableEpoch !== epoch) {
      tableEpoch = epoch
      accounts.forgetTable()
    }
    for (const a of tabled) a.inTable = false
    await rememberDids(
      redis,
      schema,
      tabled.map((a) => a.info.did),
    )
    // Remembered only if no later call has seen the epoch move again meanwhile.
    if (tableEpoch === epoch) for (const a of tabled) a.inTable = true
  }

  /**
   * Queues the DID table entry of a DID this process has not written yet, grouped by bucket; `tabled` gets
   * every account the segment's creates name (once).
   */
  function rememberTable(
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

  /**
   * Applies creates and deletes. Phase M, sent before the first await (`onSent` then lets the next call
   * send its own, so that consecutive calls reach Redis in call order): every operation of every account
   * in stream order, the subject side of
   * each create ('i'), the author side of creates and deletes ('o', 'd'), plus the DID table and hour index
   * entries. Phase C, after M's outcome: revoke the side of a create that the other side refused (deleted
   * before it arrived, or an account purged), and the subject side of what the deletes marked.
   */
  async function applySegment(
    cols: EventColumns,
    /** The segment's rows (creates and deletes; other rows are skipped) */
    from: number,
    to: number,
    stats: ApplyStats,
    /** Cache keys identity events made stale (profiles, handle resolutions): deleted with the segment. */
    staleKeys: string[],
    onSent: () => void,
  ): Promise<void> {
    // what is remembered as written is consulted below: true of the Redis of this connection only
    const lossesAtStart = losses
    const nowMs = now()
    const nowHour = Math.floor(nowMs / HOUR_MS)
    const minTime = nowMs - WINDOW_HOURS * HOUR_MS
    const edgeSec = Math.floor(nowMs / 1000) - EDGE_SECONDS
    const m = new Phase(opsPool)
    const c = new Phase(opsPool)
    const side: (string | Buffer | number)[][] = staleKeys.map((key) => ['DEL', key])
    // Creates and deletes by their row (no object per event: a batch holds ~10^5 of them across the await
    // below, long enough for the young generation to promote them), and phase M's outcomes per create: the
    // subject side and the author side, 1 added, 0 present, -1 refused.
    const creates = new Int32Array(to - from)
    let nCreates = 0
    const segment = ++segments
    const tabled: Account[] = []
    const epochAtBuild = tableEpoch
    let epochSeen = epochAtBuild
    const deletes = new Int32Array(to - from)
    let nDeletes = 0
    const results = new Int8Array(2 * (to - from))
    const { type, code, time, buf, authorStart, authorEnd, rkeyStart, rkeyEnd } = cols
    // New authors of each hour index shard: one SADD per shard, not one per author; new DID table entries:
    // one HSET per bucket (ioredis spends about as much Node CPU on a command as on a script call). HSET,
    // not HSETNX: the value of an id is a function of the id (barring a 64-bit collision).
    const hourAdds = new Map<string, string[]>()
    const table = new Map<number, (string | Buffer)[]>()
    // What this call marks as written (DID table entries, hour index members, new hours) before phase M has
    // written it: forgotten if phase M fails, so that the retry of the batch writes them again.
    const marks: Account[] = []
    const newHours: number[] = []

    for (let i = from; i < to; i++) {
      // Let the event loop turn now and then: the previous call's phase M (megabytes) is still being
      // written to the connection, which the kernel takes a socket buffer at a time, and Redis waited for
      // the rest while this loop held the thread (a trace of the bench, 2026-11-22). Other calls' phase C
      // may run meanwhile: an account they touch gets a second section here, which is still correct.
      if ((i - from) % YIELD_EVERY === YIELD_EVERY - 1) await new Promise((r) => setImmediate(r))
      const t = type[i]
      if (t === EVENT_OTHER) continue
      if (t === EVENT_CREATE) stats.creates++
      else stats.deletes++
      const b = buf[i] as Buffer
      const author = accounts.find(b, authorStart[i] as number, authorEnd[i] as number)
      // a TID is a valid rkey: only other rkeys need the regex
      const rs = rkeyStart[i] as number
      const tms = tidMs(b, rs, rkeyEnd[i] as number)
      const rkey = tms < 0 ? b.toString('utf8', rs, rkeyEnd[i]) : null
      if (!author || (rkey !== null && !isValidRkey(rkey))) {
        stats.invalid++
        continue
      }
      const eventTime = time[i] as number
      if (t === EVENT_DELETE) {
        // A delete of a record older than the window needs no tombstone: its create can never be indexed.
        const old = tms >= 0 && tms < edgeSec * 1000
        const hour = hourInRange(spillHourOf(tms), nowHour, keepHours)
        const authorOps = m.account(author)
        const off = authorOps.add(old ? OP.delOld : OP.del, hour, -1 - nDeletes)
        const ops = authorOps.ops
        if (rkey === null) writeTid(b, rs, ops, off)
        else writeRkey(rkey, ops, off)
        // record codes: COLUMN_RECORDS order = RECORD_TYPE_CODES
        ops[off + 8] = CODE_UNKNOWN | (code[i] as number)
        ops.writeInt32BE(0, off + 9)
        ops.writeInt32BE(0, off + 13)
        ops.writeUInt32BE(Math.max(0, Math.floor(eventTime / 1000)) >>> 0, off + 17)
        ops.writeUInt16BE(0, off + 21)
        deletes[nDeletes++] = i
        continue
      }
      const subject = accounts.find(b, cols.subjectStart[i] as number, cols.subjectEnd[i] as number)
      if (!subject || subject === author) {
        stats.invalid++
        continue
      }
      if (eventTime < minTime) {
        stats.expired++
        continue
      }
      const sec = Math.floor(eventTime / 1000) >>> 0
      const chars = Math.min(cols.chars[i] as number, 65535)
      // kind codes: COLUMN_KINDS order = KIND_CODES
      const kind = code[i] as number
      const hour = spillHourOf(tms, eventTime)
      const index = nCreates
      // refs: 2i the subject side of create i, 2i + 1 its author side
      const subjectOps = m.account(subject)
      const off = subjectOps.add(OP.addIn, hour, 2 * index)
      let ops = subjectOps.ops
      if (rkey === null) writeTid(b, rs, ops, off)
      else writeRkey(rkey, ops, off)
      ops[off + 8] = kind | CODE_INBOUND
      ops.writeInt32BE(author.idHi, off + 9)
      ops.writeInt32BE(author.idLo, off + 13)
      ops.writeUInt32BE(sec, off + 17)
      ops.writeUInt16BE(chars, off + 21)
      const authorOps = m.account(author)
      const outOff = authorOps.add(OP.addOut, hour, 2 * index + 1)
      const inOps = ops
      ops = authorOps.ops
      for (let k = 0; k < 8; k++) ops[outOff + k] = inOps[off + k] as number
      ops[outOff + 8] = kind
      ops.writeInt32BE(subject.idHi, outOff + 9)
      ops.writeInt32BE(subject.idLo, outOff + 13)
      ops.writeUInt32BE(sec, outOff + 17)
      ops.writeUInt16BE(chars, outOff + 21)
      creates[nCreates++] = i
      const eventHour = Math.floor(eventTime / HOUR_MS)
      if (!hoursSeen.has(eventHour)) {
        if (hoursSeen.size > WINDOW_HOURS * 2) hoursSeen.clear()
        hoursSeen.add(eventHour)
        newHours.push(eventHour)
        side.push(['SADD', schema.indexHours, eventHour])
      }
      // An author's events come in time order, nearly: remembering its latest hour spares the SADD of
      // nearly every event (one that goes back an hour is added again: SADD is idempotent).
      if (author.indexedHour !== eventHour) {
        author.indexedHour = eventHour
        marks.push(author)
        const key = schema.hourAuthors(eventHour, hourAuthorShard(author.info.id))
        author.decimal ??= idDecimal(author.info.id)
        const members = hourAdds.get(key)
        if (members) members.push(author.decimal)
        else hourAdds.set(key, [author.decimal])
      }
      rememberTable(author, table, marks, tabled, segment)
      rememberTable(subject, table, marks, tabled, segment)
    }
    for (const [key, members] of hourAdds) side.push(['SADD', key, ...members])
    for (const [bucket, fields] of table) side.push(['HSET', schema.didTable(bucket), ...fields])

    const removals: { row: number; rec: Buffer }[] = []
    try {
      if (losses !== lossesAtStart) throw new WireError('connection to Redis lost while preparing')
      const sent = run(
        m,
        wire,
        nowMs,
        side,
        (ref, code, deleted) => {
          if (ref < 0) {
            const row = deletes[-1 - ref] as number
            for (const rec of deleted ?? []) removals.push({ row, rec })
          } else results[ref] = code
        },
        (epoch) => {
          epochSeen = epoch
        },
      )
      onSent()
      await sent
      if (epochSeen !== null && epochSeen !== epochAtBuild) await writeTableAgain(tabled, epochSeen)
    } catch (err) {
      // forgotten, not restored: an earlier value may stand for a write of another call that failed too
      for (const a of marks) {
        a.inTable = false
        a.indexedHour = -1
      }
      for (const hour of newHours) hoursSeen.delete(hour)
      throw err
    }

    for (let index = 0; index < nCreates; index++) {
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

    // The subject sides of deletes.
    if (removals.length > 0) {
      const dids = await resolveIds(
        redis,
        schema,
        removals.map((x) => x.rec.toString('latin1', 9, 17)),
        cache,
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
    await run(c, lane, nowMs)
    // Phase C may have reached a restarted Redis that lost phase M: the caller applies the events again.
    if (losses !== lossesAtStart) throw new WireError('connection to Redis lost during the writes')
  }

  /**
   * Purge of a DID (account deleted or taken down) at `timeMs`: (1) mark it, so that its interactions up to
   * then are refused from now on; (2) remove every partner's record of those interactions; (3) drop its own
   * records up to then. Interactions after `timeMs` stay: a purge applied late (another process, a
   * reclaimed entry) must not take away what a reactivated account did after it. Each step is idempotent.
   */
  async function purge(did: string, timeMs: number): Promise<void> {
    const target = accounts.get(did)
    if (!target) return
    const nowMs = now()
    const nowHour = Math.floor(nowMs / HOUR_MS)
    const sec = Math.max(0, Math.floor(timeMs / 1000))
    const self = target.info
    const mark = encodeRecord({ rkey8: ZERO_ID, code: 0, partner: ZERO_ID, sec, chars: 0 })
    const first = new Phase(opsPool)
    first.account(target).addRecord(OP.mark, null, mark)
    await run(first, wire, nowMs)

    const hours: number[] = []
    for (let h = nowHour - keepHours - 2; h <= nowHour + 2; h++) hours.push(h)
    const logs = [schema.accountLog(did), ...hours.map((h) => schema.accountHourLog(did, h))]
    const values = await redis.mgetBuffer(...logs)
    const outs: { partnerKey: string; rec: Buffer }[] = []
    const ins: { partnerKey: string; rec: Buffer }[] = []
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
      redis,
      schema,
      [...outs, ...ins].map((x) => x.partnerKey),
      cache,
    )
    const partners = new Phase(opsPool)
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
    await run(partners, wire, nowMs)

    const own = new Phase(opsPool)
    const account = own.account(target)
    values.forEach((v, i) => {
      if (v) account.addRecord(OP.purgeOwn, i === 0 ? null : (hours[i - 1] as number), mark)
    })
    await run(own, wire, nowMs)
    // The 48-hour index is clean: the scheduler forgets the rest (long-term aggregates, caches, lists).
    await redis.zadd(schema.forgetQueue, nowMs, did)
  }

  async function applyColumns(
    cols: EventColumns,
    stats: ApplyStats,
    onSent: () => void,
  ): Promise<void> {
    let from = 0
    let staleKeys: string[] = []
    const privacy: PrivacyEvent[] = []
    const reactivated: string[] = []
    for (const [i, e] of cols.others) {
      if (e.type === 'block' || e.type === 'label') privacy.push(e)
      else if (e.type === 'identity') {
        stats.identities++
        if (isValidDid(e.did)) {
          staleKeys.push(schema.profile(e.did))
          // The handle is now this DID's: a cached resolution of it to another account is stale. (Its old
          // handle is dropped the same way when someone else's identity event claims it.)
          if (e.handle !== null && isValidHandle(e.handle))
            staleKeys.push(schema.handleDid(e.handle))
        } else stats.invalid++
      } else if (e.type === 'account' && isPurgeStatus(e)) {
        // Everything before the purge first, so it is purged too.
        await applySegment(cols, from, i, stats, staleKeys, () => {})
        from = i + 1
        staleKeys = []
        stats.purges++
        await purge(e.did, e.time)
        // deleted again after a reactivation in the same batch: the mark stays
        const k = reactivated.indexOf(e.did)
        if (k >= 0) reactivated.splice(k, 1)
      } else if (e.type === 'account' && e.active && isValidDid(e.did)) {
        // Reactivated (or a takedown reversed): it starts clean, served again (a purge mark reads as
        // deleted). Its earlier interactions were purged; an opt-out's mark stays (the account is still out).
        reactivated.push(e.did)
      }
    }
    await applySegment(cols, from, cols.length, stats, staleKeys, onSent)
    await clearPurgeMarks(redis, schema, reactivated, 'deletion')
    if (privacy.length > 0) {
      // Who is opted out moves here; the indexer service purges or reopens their index after the call.
      const { changes, invalid } = optOutChanges(privacy)
      stats.invalid += invalid
      stats.optOutEvents += changes.length
      for (const o of await changeOptOuts(redis, schema, changes))
        if (o.changed) stats.optOutsMoved++
    }
  }

  /**
   * Runs `fn` in this writer's order of calls: it starts its writes (phase M) after the previous call sent
   * its own, and `onSent` lets the next one start; `alone`, it also waits for every earlier call to end,
   * and the next call waits for it to end (what a purge needs: no writes of others in between).
   */
  async function inTurn<T>(alone: boolean, fn: (onSent: () => void) => Promise<T>): Promise<T> {
    const prevAll = turnAll
    let doneAll = () => {}
    turnAll = new Promise<void>((resolve) => {
      doneAll = resolve
    })
    const prevSent = sentTurn
    let markSent = () => {}
    sentTurn = new Promise<void>((resolve) => {
      markSent = resolve
    })
    try {
      await prevSent
      if (alone) await prevAll
      // the roll-up's cursor sets the compaction horizon: read at most once a minute
      const read = readCursor(now())
      if (read) await read
      return await fn(alone ? () => {} : markSent)
    } finally {
      markSent()
      doneAll()
    }
  }

  return {
    purge,
    connectionLosses: () => losses,
    forget: connectionLost,
    async close() {
      redis.off('close', connectionLost)
      await Promise.all([wire.close(), lane.close()])
    },
    apply(events) {
      return this.applyColumns(columnsOf(events))
    },
    async applyColumns(cols) {
      const stats = emptyStats()
      // Calls overlap, but each sends its phase M only after the previous call sent its own: consecutive
      // calls reach Redis in call order, so every account sees its appends in stream order, which is what
      // decides where records land. A call with a purge runs alone: after every earlier call, and the
      // next call starts only when it is done.
      let alone = false
      for (const e of cols.others.values())
        if (e.type === 'account' && isPurgeStatus(e)) alone = true
      await inTurn(alone, (onSent) => applyColumns(cols, stats, onSent))
      return stats
    },
    purgeInTurn(did, timeMs) {
      return inTurn(true, () => purge(did, timeMs))
    },
    async reopen(did) {
      // The mark goes (an account with one reads as deleted to the API and the stats): interactions from
      // now on count. What happened while it was out was refused as it came; an entry delivered that late
      // (reclaimed from a dead indexer after the return) would count: a documented limit.
      await clearPurgeMarks(redis, schema, [did], 'opt-out')
    },
  }
}
