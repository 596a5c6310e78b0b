import {
  HOUR_MS,
  type InteractionCreate,
  type InteractionDelete,
  isPurgeStatus,
  isValidDid,
  isValidRkey,
  isValidTid,
  type StreamEvent,
  tidTimestampMs,
} from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import { DidCache, type DidInfo } from './did-cache.js'
import { resolveIds } from './did-table.js'
import {
  CODE_DELETED,
  CODE_INBOUND,
  CODE_UNKNOWN,
  decodeRecord,
  didTableBucket,
  encodeRecord,
  forEachRecord,
  hourAuthorShard,
  KEEP_SECONDS,
  KIND_CODES,
  packDidText,
  RECORD_SIZE,
  RECORD_TYPE_CODES,
  spillHour,
  WINDOW_HOURS,
  writeRkey,
} from './layout.js'
import { defineIndexCommands } from './scripts.js'

export interface IndexWriterOptions {
  /** Clock in ms (tests move it). @default Date.now */
  now?: () => number
  /**
   * Byte size of an account's main log before its records spill into per-hour logs. Bigger saves keys
   * (memory) for middling accounts; smaller keeps each script's string search short.
   * @default 8192
   */
  mainLogBytes?: number
}

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
  /** Removes a DID from the index in both directions and refuses its older interactions from now on. */
  purge(did: string, timeMs: number): Promise<void>
}

const OP_SIZE = 2 + RECORD_SIZE
/** The ref of an operation whose outcome nobody needs. */
const NO_REF = Number.MIN_SAFE_INTEGER

/** The operations of one phase on one account, written straight into one buffer (one script argument). */
class AccountOps {
  readonly hours = new Map<number, number>()
  readonly keys: string[]
  ops = Buffer.allocUnsafe(OP_SIZE * 2)
  length = 0
  /** Per operation, a number the phase's result handler understands. */
  readonly refs: number[] = []

  constructor(
    private readonly names: AccountNames,
    readonly did: string,
  ) {
    const base = names.base(did)
    this.keys = [base[0], base[1]]
  }

  /** Reserves an operation and returns the offset where its 23-byte record goes. */
  add(code: number, hour: number | null, ref: number): number {
    let hk = 0
    if (hour !== null) {
      let i = this.hours.get(hour)
      if (i === undefined) {
        this.keys.push(this.names.hour(this.did, hour))
        i = this.keys.length
        this.hours.set(hour, i)
      }
      hk = i
    }
    if (this.length + OP_SIZE > this.ops.length) {
      const bigger = Buffer.allocUnsafe(this.ops.length * 2)
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

/** Byte loop: Buffer#copy costs more than it moves for 8 bytes. */
function copy8(src: Buffer, dst: Buffer, off: number): void {
  for (let k = 0; k < 8; k++) dst[off + k] = src[k] as number
}

const OP = {
  addIn: 0x69, // i
  addOut: 0x6f, // o
  del: 0x64, // d
  delOld: 0x44, // D
  removeIn: 0x72, // r
  revokeIn: 0x76, // v
  removeOut: 0x78, // x
  mark: 0x6d, // m
  purgeOwn: 0x7a, // z
} as const

/** Key names of accounts from the schema, memoised (the schema validates the DID on every call). */
class AccountNames {
  private cache = new Map<string, [string, string]>()
  constructor(private readonly schema: RedisSchema) {}

  base(did: string): [string, string] {
    let names = this.cache.get(did)
    if (!names) {
      if (this.cache.size >= 200_000) this.cache.clear()
      names = [this.schema.accountLog(did), this.schema.accountPurged(did)]
      this.cache.set(did, names)
    }
    return names
  }

  hour(did: string, hour: number): string {
    return this.schema.accountHourLog(did, hour)
  }
}

class Phase {
  readonly accounts = new Map<string, AccountOps>()
  constructor(private readonly names: AccountNames) {}

  account(did: string): AccountOps {
    let a = this.accounts.get(did)
    if (!a) {
      a = new AccountOps(this.names, did)
      this.accounts.set(did, a)
    }
    return a
  }
}

const ZERO_ID = Buffer.alloc(8)

interface Create {
  e: InteractionCreate
  author: DidInfo
  subject: DidInfo
  hour: number | null
  /** Where phase A wrote this create's inbound record (phase B and C copy it from there). */
  ops: Buffer
  off: number
  /** Phase A's outcome: -1 when the subject was purged after this interaction. */
  inResult: number
}

interface Delete {
  e: InteractionDelete
  author: DidInfo
}

/** Spill hours stay within the window: a spill log outside it cannot exist (it expired or never was). */
function hourInRange(hour: number | null, nowHour: number): number | null {
  if (hour === null || hour < nowHour - WINDOW_HOURS - 2 || hour > nowHour + 2) return null
  return hour
}

/** A member of a process-local "already written" set, marked before the write that it stands for. */
type Mark = [Set<string>, string]

export function createIndexWriter(
  redis: Redis,
  schema: RedisSchema,
  opts: IndexWriterOptions = {},
): IndexWriter {
  const now = opts.now ?? Date.now
  const mainLogBytes = opts.mainLogBytes ?? 8192
  // records of each direction the main log takes before spilling
  const mainLogCap = Math.max(1, Math.floor(mainLogBytes / RECORD_SIZE / 2))
  const r = defineIndexCommands(redis)
  const names = new AccountNames(schema)
  const cache = new DidCache()
  const tableWritten = new Set<string>()
  // Order between overlapping calls of apply(): the end of the latest phase B, the end of the latest call.
  let turnB: Promise<void> = Promise.resolve()
  let turnAll: Promise<void> = Promise.resolve()
  /** Authors already put in each hour's index by this process (hour -> id keys). */
  const hourSeen = new Map<number, Set<string>>()

  /**
   * Runs a phase in one pipelined round trip; `onResult(ref, code, deleted)` gets each operation's outcome
   * (1 applied, 0 already so, -1 refused) and, for deletes, the records they marked.
   */
  async function run(
    phase: Phase,
    nowMs: number,
    side: (string | Buffer | number)[][] = [],
    onResult?: (ref: number, code: number, deleted: Buffer[] | null) => void,
  ) {
    if (phase.accounts.size === 0 && side.length === 0) return
    const horizon = Math.floor(nowMs / 1000) - KEEP_SECONDS
    const pipe = r.pipeline()
    for (const [cmd, ...args] of side) pipe.call(cmd as string, ...args)
    const accounts = [...phase.accounts.values()]
    for (const a of accounts) {
      pipe.indexApplyBuffer(
        a.keys.length,
        ...a.keys,
        horizon,
        mainLogCap,
        KEEP_SECONDS,
        a.ops.subarray(0, a.length),
      )
    }
    const results = (await pipe.exec()) ?? []
    for (const [err] of results) if (err) throw err
    if (!onResult) return
    const offset = results.length - accounts.length
    accounts.forEach((a, i) => {
      const [codes, deleted] = (results[offset + i] as [Error | null, [Buffer, Buffer]])[1]
      let marked: Map<number, Buffer[]> | null = null
      for (let off = 0; off + 4 + RECORD_SIZE <= deleted.length; off += 4 + RECORD_SIZE) {
        marked ??= new Map()
        const j = deleted.readUInt32BE(off)
        const list = marked.get(j) ?? []
        list.push(deleted.subarray(off + 4, off + 4 + RECORD_SIZE))
        marked.set(j, list)
      }
      const refs = a.refs
      for (let j = 0; j < refs.length; j++) {
        const ref = refs[j] as number
        if (ref === NO_REF) continue
        const c = codes[j]
        onResult(ref, c === 0x31 ? 1 : c === 0x30 ? 0 : -1, marked?.get(j) ?? null)
      }
    })
  }

  /** The cached info of a valid DID; undefined for an invalid one. */
  function validDid(did: string): DidInfo | undefined {
    return cache.known(did) ?? (isValidDid(did) ? cache.info(did) : undefined)
  }

  function rememberTable(info: DidInfo, side: (string | Buffer | number)[][], marks: Mark[]): void {
    if (tableWritten.has(info.key)) return
    if (tableWritten.size >= 1_000_000) tableWritten.clear()
    tableWritten.add(info.key)
    marks.push([tableWritten, info.key])
    side.push(['HSETNX', schema.didTable(didTableBucket(info.id)), info.id, packDidText(info.did)])
  }

  async function applySegment(
    events: readonly (InteractionCreate | InteractionDelete)[],
    stats: ApplyStats,
    profiles: string[],
    gated: boolean,
  ): Promise<void> {
    const nowMs = now()
    const nowHour = Math.floor(nowMs / HOUR_MS)
    const minTime = nowMs - WINDOW_HOURS * HOUR_MS
    const horizonSec = Math.floor(nowMs / 1000) - KEEP_SECONDS
    const a = new Phase(names)
    const b = new Phase(names)
    const c = new Phase(names)
    const side: (string | Buffer | number)[][] = profiles.map((key) => ['DEL', key])
    const creates: Create[] = []
    const deletes: Delete[] = []
    // Stream order of the valid events for phase B: >= 0 a create's index, < 0 a delete's (-1 - index).
    const order: number[] = []
    // New authors of each hour index shard: one SADD per shard, not one per author (ioredis spends about
    // as much Node CPU on a command as on a script call).
    const hourAdds = new Map<string, string[]>()
    // What this call marks as written (DID table entries, hour index members, new hours) before phase A has
    // written it: undone if phase A fails, so that the retry of the batch writes them again.
    const marks: Mark[] = []
    const newHours: number[] = []

    // Phase A: the subject side of every create, and the DID table and hour index entries.
    for (const e of events) {
      if (e.type === 'create') stats.creates++
      else stats.deletes++
      const author = validDid(e.author)
      if (!author || !isValidRkey(e.rkey)) {
        stats.invalid++
        continue
      }
      if (e.type === 'delete') {
        order.push(-1 - deletes.length)
        deletes.push({ e, author })
        continue
      }
      const subject = e.subject === e.author ? undefined : validDid(e.subject)
      if (!subject) {
        stats.invalid++
        continue
      }
      if (e.time < minTime) {
        stats.expired++
        continue
      }
      const sec = Math.floor(e.time / 1000)
      const hour = spillHour(e.rkey, e.time)
      const index = creates.length
      const subjectOps = a.account(e.subject)
      const off = subjectOps.add(OP.addIn, hour, index)
      const ops = subjectOps.ops
      writeRkey(e.rkey, ops, off)
      ops[off + 8] = KIND_CODES[e.kind] | CODE_INBOUND
      copy8(author.id, ops, off + 9)
      ops.writeUInt32BE(sec >>> 0, off + 17)
      ops.writeUInt16BE(Math.min(e.chars, 65535), off + 21)
      // the same record, as the author's outbound one, is built from this one in phase B
      creates.push({ e, author, subject, hour, ops, off, inResult: 0 })
      order.push(index)
      const eventHour = Math.floor(e.time / HOUR_MS)
      let seen = hourSeen.get(eventHour)
      if (!seen) {
        if (hourSeen.size > WINDOW_HOURS * 2) hourSeen.clear()
        seen = new Set()
        hourSeen.set(eventHour, seen)
        newHours.push(eventHour)
        side.push(['SADD', schema.indexHours, eventHour])
      }
      if (!seen.has(author.key)) {
        seen.add(author.key)
        marks.push([seen, author.key])
        const key = schema.hourAuthors(eventHour, hourAuthorShard(author.id))
        const members = hourAdds.get(key)
        if (members) members.push(cache.decimal(author))
        else hourAdds.set(key, [cache.decimal(author)])
      }
      rememberTable(author, side, marks)
      rememberTable(subject, side, marks)
    }
    for (const [key, members] of hourAdds) side.push(['SADD', key, ...members])
    // Phases A and B of consecutive calls run in call order, while the Node work above overlaps the
    // previous call's round trips: each account still sees its inbound and its outbound appends in stream
    // order, so where records land does not depend on the overlap.
    const prevB = turnB
    let releaseB = () => {}
    if (gated) {
      turnB = new Promise<void>((resolve) => {
        releaseB = resolve
      })
    }
    const removals: { d: Delete; rec: Buffer }[] = []
    try {
      if (gated) await prevB
      try {
        await run(a, nowMs, side, (ref, code) => {
          ;(creates[ref] as Create).inResult = code
        })
      } catch (err) {
        for (const [set, key] of marks) set.delete(key)
        for (const hour of newHours) hourSeen.delete(hour)
        throw err
      }

      // Phase B: the author side, creates and deletes in stream order per author.
      for (const ref of order) {
        if (ref >= 0) {
          const item = creates[ref] as Create
          if (item.inResult === -1) {
            stats.refused++
            continue
          }
          const authorOps = b.account(item.e.author)
          const off = authorOps.add(OP.addOut, item.hour, ref)
          const ops = authorOps.ops
          const src = item.ops
          for (let k = 0; k < RECORD_SIZE; k++) ops[off + k] = src[item.off + k] as number
          ops[off + 8] = KIND_CODES[item.e.kind]
          copy8(item.subject.id, ops, off + 9)
        } else {
          const d = deletes[-1 - ref] as Delete
          const { e } = d
          // A delete of a record older than the window needs no tombstone: its create can never be indexed.
          const old = isValidTid(e.rkey) && tidTimestampMs(e.rkey) < horizonSec * 1000
          const hour = hourInRange(spillHour(e.rkey), nowHour)
          const authorOps = b.account(e.author)
          const off = authorOps.add(old ? OP.delOld : OP.del, hour, ref)
          const ops = authorOps.ops
          writeRkey(e.rkey, ops, off)
          ops[off + 8] = CODE_UNKNOWN | RECORD_TYPE_CODES[e.record]
          copy8(ZERO_ID, ops, off + 9)
          ops.writeUInt32BE(Math.max(0, Math.floor(e.time / 1000)) >>> 0, off + 17)
          ops.writeUInt16BE(0, off + 21)
        }
      }
      await run(b, nowMs, [], (ref, code, deleted) => {
        if (ref < 0) {
          const d = deletes[-1 - ref] as Delete
          for (const rec of deleted ?? []) removals.push({ d, rec })
          return
        }
        if (code === 1) stats.added++
        else if (code === 0) stats.duplicates++
        else {
          stats.refused++
          // Deleted before this create arrived (or purged): take back the subject side written in phase A.
          const item = creates[ref] as Create
          const rec = item.ops.subarray(item.off, item.off + RECORD_SIZE)
          c.account(item.e.subject).addRecord(OP.revokeIn, item.hour, rec)
        }
      })
    } finally {
      releaseB()
    }

    // Phase C: the subject sides of deletes (and of creates refused above).
    if (removals.length > 0) {
      const dids = await resolveIds(
        redis,
        schema,
        removals.map((x) => x.rec.toString('latin1', 9, 17)),
        cache,
      )
      for (const { d, rec } of removals) {
        const f = decodeRecord(rec, 0)
        const subject = dids.get(f.partner.toString('latin1'))
        if (!subject) continue
        stats.removed++
        const inRec = encodeRecord({
          rkey8: f.rkey8,
          code: (f.code & 3) | CODE_INBOUND,
          partner: d.author.id,
          sec: f.sec,
          chars: f.chars,
        })
        c.account(subject).addRecord(OP.revokeIn, spillHour(d.e.rkey, f.sec * 1000), inRec)
      }
    }
    await run(c, nowMs)
  }

  /**
   * Purge of a DID (account deleted or taken down) at `timeMs`: (1) mark it, so that its interactions up to
   * then are refused from now on; (2) remove every partner's record of those interactions; (3) drop its own
   * records up to then. Interactions after `timeMs` stay: a purge applied late (another process, a
   * reclaimed entry) must not take away what a reactivated account did after it. Each step is idempotent.
   */
  async function purge(did: string, timeMs: number): Promise<void> {
    if (!isValidDid(did)) return
    const nowMs = now()
    const nowHour = Math.floor(nowMs / HOUR_MS)
    const sec = Math.max(0, Math.floor(timeMs / 1000))
    const self = cache.info(did)
    const mark = encodeRecord({ rkey8: ZERO_ID, code: 0, partner: ZERO_ID, sec, chars: 0 })
    const first = new Phase(names)
    first.account(did).addRecord(OP.mark, null, mark)
    await run(first, nowMs)

    const hours: number[] = []
    for (let h = nowHour - WINDOW_HOURS - 2; h <= nowHour + 2; h++) hours.push(h)
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
    const partners = new Phase(names)
    for (const { partnerKey, rec } of outs) {
      const partner = dids.get(partnerKey)
      if (!partner) continue
      const f = decodeRecord(rec, 0)
      const inRec = encodeRecord({ ...f, code: (f.code & 3) | CODE_INBOUND, partner: self.id })
      partners.account(partner).addRecord(OP.removeIn, Math.floor(f.sec / 3600), inRec)
    }
    for (const { partnerKey, rec } of ins) {
      const partner = dids.get(partnerKey)
      if (!partner) continue
      const f = decodeRecord(rec, 0)
      const outRec = encodeRecord({ ...f, code: f.code & 3, partner: self.id })
      partners.account(partner).addRecord(OP.removeOut, Math.floor(f.sec / 3600), outRec)
    }
    await run(partners, nowMs)

    const own = new Phase(names)
    const account = own.account(did)
    values.forEach((v, i) => {
      if (v) account.addRecord(OP.purgeOwn, i === 0 ? null : (hours[i - 1] as number), mark)
    })
    await run(own, nowMs)
  }

  return {
    purge,
    async apply(events) {
      const stats = emptyStats()
      const prevAll = turnAll
      let doneAll = () => {}
      turnAll = new Promise<void>((resolve) => {
        doneAll = resolve
      })
      // A call with a purge runs alone: after every earlier call, before any later one.
      const alone = events.some((e) => e.type === 'account' && isPurgeStatus(e))
      let releaseB = () => {}
      if (alone) {
        turnB = new Promise<void>((resolve) => {
          releaseB = resolve
        })
      }
      try {
        if (alone) await prevAll
        let segment: (InteractionCreate | InteractionDelete)[] = []
        let profiles: string[] = []
        for (const e of events) {
          if (e.type === 'create' || e.type === 'delete') {
            segment.push(e)
          } else if (e.type === 'identity') {
            stats.identities++
            if (isValidDid(e.did)) profiles.push(schema.profile(e.did))
            else stats.invalid++
          } else if (isPurgeStatus(e)) {
            // Everything before the purge first, so it is purged too.
            await applySegment(segment, stats, profiles, !alone)
            segment = []
            profiles = []
            stats.purges++
            await purge(e.did, e.time)
          }
        }
        await applySegment(segment, stats, profiles, !alone)
        return stats
      } finally {
        releaseB()
        doneAll()
      }
    },
  }
}
