import { RECORD_SIZE } from '../layout.js'
import type { Account } from './accounts.js'

// An operation is what the index function applies to one account (see lua/index-apply.lua): an opcode, the
// index of its spill log among the account's keys (0: none) and a 23-byte record. A phase is the operations
// of one round trip, grouped by account; each account's go as one section of a script call (sections.ts).

export const OP_SIZE = 2 + RECORD_SIZE
/** The ref of an operation whose outcome nobody needs. */
export const NO_REF = Number.MIN_SAFE_INTEGER
/** Operations of one account in one section of a script call (the count is a uint16). */
export const MAX_SECTION_OPS = 65535

/**
 * The operations of one phase on one account, written straight into one buffer. Reused: once its phase is
 * sent (copied into the script calls), it goes back to the writer's pool with its arrays and buffer.
 */
export class AccountOps {
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

export const OP = {
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

let phaseIds = 0
/** Pooled AccountOps kept at most (a phase of a full batch uses ~10^5). */
const MAX_POOLED = 200_000

export class Phase {
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
