import { createHash } from 'node:crypto'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type {
  AccountEvent,
  InteractionCreate,
  InteractionDelete,
  InteractionKind,
  RecordType,
  StreamEvent,
} from '@circles/core'
import { encodeEvents, tidFromMs } from '@circles/core'
import { type Partner, RECORD_SIZE } from '@circles/interaction-index'
import type { Answers } from '@circles/ops'
import type { RedisSchema } from '@circles/redis-schema'
import { groupInfo } from '@circles/stream-info'
import { prng } from '@circles/testkit'
import type { Redis } from 'ioredis'

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

const HERE = dirname(fileURLToPath(import.meta.url))
/** The built services, run as processes (as PM2 runs them) by the tests that kill or restart things. */
export const FIREHOSE_MAIN = resolve(HERE, '../../firehose/dist/src/main.js')
export const INDEXER_MAIN = resolve(HERE, '../dist/src/main.js')

/** A valid did:plc derived from a name, so tests read well and stay deterministic. */
export function plc(name: string): string {
  const h = createHash('sha256').update(name).digest()
  let s = 'did:plc:'
  for (let i = 0; i < 24; i++) s += B32[(h[i] as number) % 32]
  return s
}

export function create(
  author: string,
  subject: string,
  kind: InteractionKind,
  time: number,
  rkey = tidFromMs(time),
  chars = 0,
): InteractionCreate {
  return { type: 'create', kind, author, subject, rkey, time, chars }
}

export function del(
  author: string,
  record: RecordType,
  rkey: string,
  time: number,
): InteractionDelete {
  return { type: 'delete', record, author, rkey, time }
}

export function purge(did: string, time: number): AccountEvent {
  return { type: 'account', did, active: false, status: 'deleted', time }
}

/**
 * Every key under a prefix in a canonical form: log records sorted (their order depends on the order in
 * which entries were applied, which a crash or reclaim changes), sets and hashes sorted, expiry times kept.
 */
export async function canonicalExport(
  redis: Redis,
  prefix: string,
): Promise<Record<string, unknown>> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  keys.sort()
  const out: Record<string, unknown> = {}
  for (const key of keys) {
    const type = await redis.type(key)
    const expireAt = await redis.call('EXPIRETIME', key)
    let value: unknown
    if (type === 'string') {
      const buf = (await redis.getBuffer(key)) as Buffer
      if (/\}:log(:\d+)?$/.test(key)) {
        const records: string[] = []
        for (let off = buf.length % RECORD_SIZE; off < buf.length; off += RECORD_SIZE) {
          records.push(buf.subarray(off, off + RECORD_SIZE).toString('hex'))
        }
        value = records.sort()
      } else {
        value = buf.toString('hex')
      }
    } else if (type === 'set') {
      value = (await redis.smembers(key)).sort()
    } else if (type === 'hash') {
      const flat = (await redis.callBuffer('HGETALL', key)) as Buffer[]
      const pairs: string[] = []
      for (let i = 0; i < flat.length; i += 2) {
        pairs.push(`${flat[i]?.toString('hex')}=${flat[i + 1]?.toString('hex')}`)
      }
      value = pairs.sort()
    } else {
      value = type
    }
    out[key] = { type, expireAt, value }
  }
  return out
}

/** Waits until the indexer group has read and acknowledged every entry of the stream. */
export async function waitDrained(redis: Redis, stream: string, group: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const { lag, pending } = await groupCounts(redis, stream, group)
    if (lag === 0 && pending === 0) return
    if (Date.now() > deadline) throw new Error(`stream not drained: lag ${lag}, pending ${pending}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/**
 * The group's lag and pending count; -1 for both while the group, the stream or Redis itself is missing
 * (a test polls through restarts). A lag Redis cannot tell (null) is 0 when no entry follows the group's
 * last delivered one, else 1 (at least one left). It is null mid-stream after deletions in the unread range,
 * and on a replica promoted by a failover: Redis 7.0 replicates XREADGROUP as XCLAIM, which leaves the
 * replica's entries-read counter unknown. Reading that as 0 ended a failover test while the indexers were
 * still backing off, with up to 60 % of the stream unread ("lost").
 */
export async function groupCounts(
  redis: Redis,
  stream: string,
  group: string,
): Promise<{ lag: number; pending: number }> {
  const info = await groupInfo(redis, stream, group).catch(() => undefined)
  if (!info) return { lag: -1, pending: -1 }
  if (info.lag !== null) return { lag: info.lag, pending: info.pending }
  const next = await redis
    .xrange(stream, `(${info.lastDeliveredId}`, '+', 'COUNT', 1)
    .catch(() => [undefined])
  return { lag: next.length, pending: info.pending }
}

/** The index keys of a canonical export with the prefix cut off (stream and metrics left out). */
export function indexPart(dump: Record<string, unknown>, prefix: string): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(dump)) {
    const k = key.slice(prefix.length)
    if (k.startsWith('{fh}') || k.startsWith('indexer:')) continue
    out[k] = v
  }
  return out
}

/**
 * A deterministic mix of what the stream carries: creates of every kind (some posts both reply and quote),
 * deletes (some arriving BEFORE their create), re-likes in one commit, identity events, and one purge.
 */
export function mixedEvents(
  count: number,
  nowMs: number,
  seed = 1,
  withPurge = true,
): StreamEvent[] {
  const rand = prng(seed)
  const dids = Array.from({ length: 40 }, (_, i) => plc(`user${i}`))
  const pick = () => dids[Math.floor(rand() ** 2 * dids.length)] as string
  const kinds: InteractionKind[] = ['like', 'like', 'like', 'repost', 'reply', 'quote']
  const out: StreamEvent[] = []
  const made: InteractionCreate[] = []
  for (let i = 0; i < count; i++) {
    const time = nowMs - 3 * 3_600_000 + i * 500
    const author = pick()
    let subject = pick()
    if (subject === author) subject = dids[(dids.indexOf(author) + 1) % dids.length] as string
    const kind = kinds[Math.floor(rand() * kinds.length)] as InteractionKind
    const rkey = tidFromMs(time, i % 1024)
    const c = create(
      author,
      subject,
      kind,
      time,
      rkey,
      kind === 'reply' || kind === 'quote' ? 20 : 0,
    )
    const x = rand()
    if (x < 0.05 && made.length > 0) {
      // a delete that overtakes its create
      out.push(
        del(
          author,
          kind === 'like' ? 'like' : kind === 'repost' ? 'repost' : 'post',
          rkey,
          time + 1,
        ),
      )
      out.push(c)
    } else if (x < 0.1 && made.length > 0) {
      const old = made[Math.floor(rand() * made.length)] as InteractionCreate
      const rec = old.kind === 'like' ? 'like' : old.kind === 'repost' ? 'repost' : 'post'
      out.push(del(old.author, rec, old.rkey, time))
    } else if (x < 0.13) {
      // re-like: delete and create in one commit
      const like = create(author, subject, 'like', time, rkey)
      out.push(like, del(author, 'like', rkey, time + 2), create(author, subject, 'like', time + 3))
    } else if (x < 0.16 && kind === 'reply') {
      out.push(c, create(author, pick() === author ? subject : pick(), 'quote', time, rkey, 20))
    } else if (x < 0.17) {
      out.push({ type: 'identity', did: author, handle: null, time })
    } else {
      out.push(c)
      made.push(c)
    }
    if (withPurge && i === Math.floor(count * 0.6)) out.push(purge(dids[3] as string, time))
  }
  return out.filter((e) => e.type !== 'create' || e.author !== e.subject)
}

/** Waits until `check` holds; a check that throws (Redis down or refusing) counts as "not yet". */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

// Shared with the PM2 test in packages/ops.
export { type Answers, everyAnswer } from '@circles/ops'

/**
 * The answers that differ, one line each, with both values: a failure must say which account or hour went
 * wrong and how (a whole-object diff of ~120 accounts is cut short before it gets there).
 */
export function answerDiff(got: Answers, want: Answers): string[] {
  const out: string[] = []
  for (const did of new Set([...Object.keys(got.partners), ...Object.keys(want.partners)])) {
    // partner by partner: an account's whole list is long, the partners that differ are few
    const byPartner = (list: unknown) =>
      new Map(((list ?? []) as { did: string }[]).map((p) => [p.did, JSON.stringify(p)]))
    const a = byPartner(got.partners[did])
    const b = byPartner(want.partners[did])
    for (const partner of new Set([...a.keys(), ...b.keys()])) {
      if (a.get(partner) === b.get(partner)) continue
      out.push(
        `${did} with ${partner}: got ${a.get(partner) ?? 'nothing'}, uninterrupted run ${b.get(partner) ?? 'nothing'}`,
      )
    }
  }
  for (const hour of new Set([...Object.keys(got.hours), ...Object.keys(want.hours)])) {
    const a = new Set((got.hours[Number(hour)] ?? []) as string[])
    const b = new Set((want.hours[Number(hour)] ?? []) as string[])
    const extra = [...a].filter((r) => !b.has(r))
    const missing = [...b].filter((r) => !a.has(r))
    if (!(Number(hour) in got.hours) || !(Number(hour) in want.hours))
      out.push(
        `hour ${hour}: in ${Number(hour) in got.hours ? 'this run' : 'the uninterrupted run'} only`,
      )
    if (extra.length > 0 || missing.length > 0)
      out.push(`hour ${hour}: rows only here ${extra.join(' ')}; rows missing ${missing.join(' ')}`)
  }
  return out
}

/**
 * Interactions held (each counted once, at its author: the partners' `sent` counts), and how many of
 * the uninterrupted run's are missing (lost) or counted beyond it (doubled), kind by kind.
 */
export function tally(
  got: Answers,
  want: Answers,
): { held: number; lost: number; doubled: number } {
  const sent = (answers: Answers) => {
    const out = new Map<string, number>()
    for (const [did, list] of Object.entries(answers.partners)) {
      for (const p of list as Partner[]) {
        for (const [kind, n] of Object.entries(p.sent)) out.set(`${did} ${p.did} ${kind}`, n)
      }
    }
    return out
  }
  const a = sent(got)
  const b = sent(want)
  let held = 0
  let lost = 0
  let doubled = 0
  for (const n of a.values()) held += n
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const d = (a.get(key) ?? 0) - (b.get(key) ?? 0)
    if (d > 0) doubled += d
    else lost -= d
  }
  return { held, lost, doubled }
}

/** The stream entries the firehose would write for `events`: field lists of `perEntry` events each. */
export function entriesOf(events: readonly StreamEvent[], perEntry: number): (string | Buffer)[][] {
  const out: (string | Buffer)[][] = []
  for (let i = 0; i < events.length; i += perEntry) {
    out.push(['e', encodeEvents(events.slice(i, i + perEntry))])
  }
  return out
}

/** Appends entries (field lists) to the event stream in one pipeline. */
export async function publishEntries(
  redis: Redis,
  schema: RedisSchema,
  entries: readonly (string | Buffer)[][],
): Promise<void> {
  const pipe = redis.pipeline()
  for (const fields of entries) pipe.xadd(schema.eventStream, '*', ...fields)
  for (const [err] of (await pipe.exec()) ?? []) if (err) throw err
}
