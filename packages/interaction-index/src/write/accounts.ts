import { randomInt } from 'node:crypto'
import { isValidDid } from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import { encodeBulks, keySlot } from '@circles/redis-wire'
import type { DidCache, DidInfo } from '../did-cache.js'
import type { AccountOps } from './ops.js'

/** What the writer keeps about an account between batches (one Map lookup per DID of an event). */
export interface Account {
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
export class Accounts {
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
