import { createIndexReader, didId } from '@circles/interaction-index'
import { createSchema } from '@circles/redis-schema'
import {
  type InteractionLedger,
  type KindTally,
  type LedgerKind,
  type PartnerTally,
  svgTitles,
  weightedScore,
} from '@circles/testkit'
import type { PdsAccount, ScriptAccounts } from '@circles/testkit/pds'
import type { Redis } from 'ioredis'

// The chain test's two sides, in one shape so that a failure is one readable diff: what the API must
// answer, computed from the script's ledger (`expected*`), and what it answers over HTTP (`read*`).
// Accounts appear by their script names (ali, bob, ...), not DIDs.

/** The API's documented defaults (fart README, `weights`). */
export const DEFAULT_WEIGHTS: KindTally = { like: 1, repost: 2, reply: 3, quote: 3 }
const NO_LIKES: KindTally = { ...DEFAULT_WEIGHTS, like: 0 }
const COUNT: KindTally = { like: 1, repost: 1, reply: 1, quote: 1 }
const KINDS_AND_ALL = ['like', 'repost', 'reply', 'quote', 'all'] as const

/** Partner name -> score and counts both ways; or a string saying what was wrong with an answer. */
export type Tallies = Record<string, { score: number } & PartnerTally>
type Answer<T> = T | string

interface Member extends PartnerTally {
  did: string
  handle?: string
  score: number
}

export class Names {
  readonly #byDid = new Map<string, { name: string; handle: string }>()
  readonly #byHandle = new Map<string, string>()

  constructor(accounts: ScriptAccounts) {
    for (const [name, a] of Object.entries(accounts)) {
      this.#byDid.set(a.did, { name, handle: a.handle })
      this.#byHandle.set(a.handle, name)
    }
  }

  of(did: string): string {
    return this.#byDid.get(did)?.name ?? did
  }

  ofHandle(handle: string): string {
    return this.#byHandle.get(handle) ?? handle
  }

  handleOf(did: string): string | undefined {
    return this.#byDid.get(did)?.handle
  }

  /** A DID-keyed record re-keyed by name, in name order (so equal content compares equal). */
  rekey<T>(byDid: Iterable<readonly [string, T]>): Record<string, T> {
    const out = [...byDid].map(([did, v]) => [this.of(did), v] as const)
    return Object.fromEntries(out.sort(([a], [b]) => a.localeCompare(b)))
  }
}

function tallies(
  names: Names,
  partners: Map<string, PartnerTally>,
  score: (t: PartnerTally) => number,
): Tallies {
  const scored = [...partners]
    .map(([did, t]) => [did, { score: score(t), sent: t.sent, received: t.received }] as const)
    .filter(([, t]) => t.score > 0)
  return names.rekey(scored)
}

function tallyMembers(names: Names, members: readonly Member[]): Tallies {
  return names.rekey(
    members.map((m) => [m.did, { score: m.score, sent: m.sent, received: m.received }]),
  )
}

/** What the live index under `prefix` holds, as `/v1/interactions` would list it (no API in between). */
export async function indexTallies(
  redis: Redis,
  prefix: string,
  names: Names,
  accounts: readonly PdsAccount[],
): Promise<Record<string, Tallies>> {
  const index = createIndexReader(redis, createSchema(prefix))
  const out: Record<string, Tallies> = {}
  for (const a of accounts) {
    const { partners } = await index.partners({ did: a.did, windowHours: 48, limit: 1000 })
    out[names.of(a.did)] = tallyMembers(names, partners)
  }
  return out
}

function isDescending(values: readonly number[]): boolean {
  return values.every((v, i) => i === 0 || v <= (values[i - 1] as number))
}

export async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) })
  const text = await res.text()
  const json = (res.headers.get('content-type') ?? '').includes('json')
  return { status: res.status, body: json ? JSON.parse(text) : null }
}

function perAccount<T>(names: Names, accounts: readonly PdsAccount[], f: (a: PdsAccount) => T) {
  return Object.fromEntries(accounts.map((a) => [names.of(a.did), f(a)]))
}

async function perAccountAsync<T>(
  names: Names,
  accounts: readonly PdsAccount[],
  f: (a: PdsAccount) => Promise<T>,
): Promise<Record<string, T>> {
  const out: Record<string, T> = {}
  for (const a of accounts) out[names.of(a.did)] = await f(a)
  return out
}

/** `/v1/interactions`: every partner with its counts; the score is the plain total. */
export function expectedInteractions(
  l: InteractionLedger,
  n: Names,
  accounts: readonly PdsAccount[],
) {
  return perAccount(n, accounts, (a) =>
    tallies(n, l.partnersOf(a.did), (t) => weightedScore(t, COUNT, 'both')),
  )
}

export function readInteractions(api: string, n: Names, accounts: readonly PdsAccount[]) {
  return perAccountAsync(n, accounts, async (a): Promise<Answer<Tallies>> => {
    const { status, body } = await getJson(`${api}/v1/interactions/${a.handle}`)
    const page = body as { partners?: Member[]; cursor?: string }
    if (status !== 200) return `HTTP ${status}`
    if (page.cursor) return 'more than one page'
    if (!isDescending((page.partners ?? []).map((p) => p.score))) return 'out of order'
    return tallyMembers(n, page.partners ?? [])
  })
}

/** `/v1/circles` with the default parameters: everyone with a positive weighted score (fewer than 49). */
export function expectedCircles(l: InteractionLedger, n: Names, accounts: readonly PdsAccount[]) {
  return perAccount(n, accounts, (a) =>
    tallies(n, l.partnersOf(a.did), (t) => weightedScore(t, DEFAULT_WEIGHTS, 'both')),
  )
}

async function readCircle(api: string, n: Names, actor: PdsAccount, query = '') {
  const { status, body } = await getJson(`${api}/v1/circles/${actor.handle}${query}`)
  if (status !== 200) return `HTTP ${status}`
  const circle = body as { rings: { members: Member[] }[]; profilesComplete: boolean }
  const members = circle.rings.flatMap((r) => r.members)
  if (!circle.profilesComplete) return 'profiles incomplete'
  if (!isDescending(members.map((m) => m.score))) return 'members out of order'
  const misnamed = members.filter((m) => m.handle !== n.handleOf(m.did)).map((m) => m.did)
  if (misnamed.length > 0) return `wrong handles: ${misnamed.join(', ')}`
  return tallyMembers(n, members)
}

export function readCircles(api: string, n: Names, accounts: readonly PdsAccount[]) {
  return perAccountAsync(n, accounts, (a) => readCircle(api, n, a))
}

/** One account's circle by direction, without likes, and split into rings of 1 and 2. */
export function expectedVariants(l: InteractionLedger, n: Names, a: PdsAccount) {
  const partners = l.partnersOf(a.did)
  const ranked = [...partners]
    .map(([did, t]) => ({ did, score: weightedScore(t, DEFAULT_WEIGHTS, 'both') }))
    .sort((x, y) => y.score - x.score)
  if (new Set(ranked.map((r) => r.score)).size !== ranked.length) {
    throw new Error(`${n.of(a.did)}'s partners tie: their ring placement is not determined`)
  }
  return {
    sent: tallies(n, partners, (t) => weightedScore(t, DEFAULT_WEIGHTS, 'sent')),
    received: tallies(n, partners, (t) => weightedScore(t, DEFAULT_WEIGHTS, 'received')),
    nolikes: tallies(n, partners, (t) => weightedScore(t, NO_LIKES, 'both')),
    rings: [ranked.slice(0, 1), ranked.slice(1, 3)].map((ring) => ring.map((r) => n.of(r.did))),
  }
}

export async function readVariants(api: string, n: Names, a: PdsAccount) {
  const { body } = await getJson(`${api}/v1/circles/${a.handle}?rings=1,2`)
  const rings = (body as { rings?: { members: Member[] }[] } | null)?.rings ?? []
  return {
    sent: await readCircle(api, n, a, '?direction=sent'),
    received: await readCircle(api, n, a, '?direction=received'),
    nolikes: await readCircle(api, n, a, '?nolikes=true'),
    rings: rings.map((r) => r.members.map((m) => n.of(m.did))),
  }
}

/** The names on an account's drawn circle: its own disc and its members'. */
export function expectedDrawings(l: InteractionLedger, n: Names, accounts: readonly PdsAccount[]) {
  return perAccount(n, accounts, (a) =>
    [a.did, ...l.partnersOf(a.did).keys()].map((did) => n.of(did)).sort(),
  )
}

export function readDrawings(api: string, n: Names, accounts: readonly PdsAccount[]) {
  return perAccountAsync(n, accounts, async (a): Promise<Answer<string[]>> => {
    const res = await fetch(`${api}/v1/circles/${a.handle}.svg`, {
      signal: AbortSignal.timeout(5000),
    })
    const text = await res.text()
    const type = res.headers.get('content-type') ?? ''
    if (res.status !== 200 || !type.startsWith('image/svg+xml')) return `HTTP ${res.status} ${type}`
    // svgTitles throws on malformed markup: the poll retries, and the deadline reports it.
    return svgTitles(text)
      .map((t) => n.ofHandle(t))
      .sort()
  })
}

/** A deleted account: no circle (404 AccountUnavailable, as JSON and drawn) and no partners listed. */
export const GONE = { circle: 404, error: 'AccountUnavailable', svg: 404, partnersListed: 0 }

export async function readGone(api: string, a: PdsAccount) {
  const circle = await getJson(`${api}/v1/circles/${a.did}`)
  const svg = await getJson(`${api}/v1/circles/${a.did}.svg`)
  const interactions = await getJson(`${api}/v1/interactions/${a.did}`)
  return {
    circle: circle.status,
    error: (circle.body as { error?: string } | null)?.error,
    svg: svg.status,
    partnersListed: (interactions.body as { partners?: unknown[] } | null)?.partners?.length ?? 0,
  }
}

/** `/v1/stats`, from the ledger: totals by kind, exact tops, the firehose's counters, a drained stream. */
export function expectedStats(l: InteractionLedger, n: Names) {
  const tops = (side: 'author' | 'subject') =>
    Object.fromEntries(KINDS_AND_ALL.map((k) => [k, n.rekey(l.countsBy(side, k))]))
  return {
    computedAfter: true,
    totals: l.totals(),
    authors: tops('author'),
    subjects: tops('subject'),
    firehose: { interactions: l.created, self: l.selfInteractions },
    stream: { undelivered: 0, pending: 0 },
  }
}

interface StatsDoc {
  generatedAtMs: number
  hours: Record<LedgerKind, number>[]
  top: Record<'authors' | 'subjects', Record<string, { did: string; count: number }[]>>
  pipeline: {
    firehose: Record<string, number | string>
    stream: { undelivered: number | null; pending: number | null }
  }
}

/** The stats document in the shape above; `computedAfter`: it was computed after `since` (ms). */
export async function readStats(api: string, n: Names, since: number) {
  const { status, body } = await getJson(`${api}/v1/stats`)
  if (status !== 200) return `HTTP ${status}`
  const doc = body as StatsDoc
  const totals: KindTally = { like: 0, repost: 0, reply: 0, quote: 0 }
  for (const h of doc.hours) for (const k of Object.keys(totals) as LedgerKind[]) totals[k] += h[k]
  const tops = (lists: Record<string, { did: string; count: number }[]>) =>
    Object.fromEntries(
      KINDS_AND_ALL.map((k) => {
        const list = lists[k] ?? []
        if (!isDescending(list.map((r) => r.count))) return [k, 'out of order']
        return [k, n.rekey(list.map((r) => [r.did, r.count]))]
      }),
    )
  const { firehose, stream } = doc.pipeline
  return {
    computedAfter: doc.generatedAtMs > since,
    totals,
    authors: tops(doc.top.authors),
    subjects: tops(doc.top.subjects),
    firehose: { interactions: firehose.interactions, self: firehose.self },
    stream: { undelivered: stream.undelivered, pending: stream.pending },
  }
}

/**
 * Every place under `prefix` where an account is still named, by DID or by its 8-byte index id: key names,
 * and the members, fields and values of every key (strings, hashes, sets, sorted sets, streams). Its purge
 * mark is the one key expected (it refuses late creates, and expires by itself).
 */
export async function leftoversOf(redis: Redis, prefix: string, did: string): Promise<string[]> {
  const needles = [Buffer.from(did), didId(did)]
  const named = (b: Buffer) => needles.some((n) => b.includes(n))
  const found: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await redis.scanBuffer(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = String(next)
    for (const key of keys) {
      const name = key.toString('latin1')
      if (name.endsWith(':purged') && named(key)) continue
      if (named(key)) found.push(`key ${name}`)
      const type = await redis.type(key)
      let parts: Buffer[] = []
      if (type === 'string') parts = [(await redis.getBuffer(key)) ?? Buffer.alloc(0)]
      else if (type === 'hash')
        parts = await redis
          .hgetallBuffer(key)
          .then((h) => Object.values(h).concat(Object.keys(h).map((k) => Buffer.from(k, 'latin1'))))
      else if (type === 'set') parts = await redis.smembersBuffer(key)
      else if (type === 'zset') parts = await redis.zrangeBuffer(key, 0, -1)
      else if (type === 'stream') {
        const entries = (await redis.xrangeBuffer(key, '-', '+')) as [Buffer, Buffer[]][]
        parts = entries.flatMap(([, fields]) => fields)
      }
      if (parts.some(named)) found.push(`${type} ${name}`)
    }
  } while (cursor !== '0')
  return found.sort()
}
