// The freshness samples of `pnpm bench:e2e`: which interactions of which accounts to watch for in
// `/v1/interactions`, and how many of each (partner, kind) the account must show once a sample is applied.
import type { StreamEvent } from '@circles/core'
import { type CorpusFrame, prng, referenceEvents } from '@circles/testkit'

/** One create to watch for: visible once `author` shows `expected` sent `kind`s to `subject`. */
export interface Sample {
  /** Index of its frame in the corpus (the pacer stamps the send time by index). */
  frame: number
  author: string
  /** `${subject} ${kind}`, as `partnerCounts` keys them. */
  key: string
  expected: number
}

export interface SamplePlan {
  /** Every DID the watched frames name (their profiles are pre-cached, as after a warm-up). */
  dids: Set<string>
  /** By author, in frame order. */
  byAuthor: Map<string, Sample[]>
  total: number
}

/**
 * Decodes frames [0, end) the slow, obviously-right way (testkit's reference decoder, one frame at a time so
 * each event keeps its frame) and picks `accounts` authors at random among those that create after `from`.
 * Every create of theirs after `from` becomes a sample, except for a (partner, kind) that a delete touches
 * anywhere in the range: with a delete in between, "count reached" no longer means "this create applied".
 */
export async function planSamples(
  frames: readonly CorpusFrame[],
  from: number,
  end: number,
  accounts: number,
): Promise<SamplePlan> {
  const net = new Map<string, number>()
  // `${author} ${rkey}` -> triples: a reply that quotes is two creates under one rkey, and its delete undoes both.
  const createdBy = new Map<string, string[]>()
  const spoiled = new Set<string>()
  const dids = new Set<string>()
  const creates: { frame: number; author: string; key: string; expected: number }[] = []
  for (let i = 0; i < end; i++) {
    const { events } = await referenceEvents([frames[i] as CorpusFrame])
    for (const e of events as StreamEvent[]) {
      if (e.type === 'create') {
        const key = `${e.subject} ${e.kind}`
        const triple = `${e.author} ${key}`
        const expected = (net.get(triple) ?? 0) + 1
        net.set(triple, expected)
        const rk = `${e.author} ${e.rkey}`
        createdBy.set(rk, [...(createdBy.get(rk) ?? []), triple])
        dids.add(e.author).add(e.subject)
        if (i >= from) creates.push({ frame: i, author: e.author, key, expected })
      } else if (e.type === 'delete') {
        for (const triple of createdBy.get(`${e.author} ${e.rkey}`) ?? []) spoiled.add(triple)
      }
    }
  }
  const authors = [...new Set(creates.map((c) => c.author))].sort()
  const random = prng(20)
  const chosen = new Set<string>()
  while (chosen.size < Math.min(accounts, authors.length))
    chosen.add(authors[Math.floor(random() * authors.length)] as string)
  const byAuthor = new Map<string, Sample[]>()
  let total = 0
  for (const c of creates) {
    if (!chosen.has(c.author) || spoiled.has(`${c.author} ${c.key}`)) continue
    const list = byAuthor.get(c.author) ?? []
    list.push(c)
    byAuthor.set(c.author, list)
    total++
  }
  return { dids, byAuthor, total }
}

interface PartnerPage {
  partners: {
    did: string
    sent: Record<string, number>
  }[]
  cursor?: string
}

/** Sent counts of one account by `${partner} ${kind}`, every page of `/v1/interactions/:actor`. */
export async function partnerCounts(api: string, did: string): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  let cursor: string | undefined
  do {
    const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''
    const res = await fetch(`${api}/v1/interactions/${did}?limit=100${q}`)
    if (res.status !== 200)
      throw new Error(`/v1/interactions/${did}: ${res.status} ${await res.text()}`)
    const page = (await res.json()) as PartnerPage
    for (const p of page.partners)
      for (const [kind, n] of Object.entries(p.sent)) out.set(`${p.did} ${kind}`, n)
    cursor = page.cursor
  } while (cursor)
  return out
}

/**
 * Polls one account every `pollMs` until each of its samples shows, and records each sample's freshness: the
 * time the response that first showed it arrived, minus its frame's send time (`sentAt`, 0 = not sent yet).
 * Measured at the response's arrival, it is an upper bound, late by at most one poll period and one request.
 */
export async function watchAccount(
  api: string,
  did: string,
  samples: Sample[],
  sentAt: Float64Array,
  pollMs: number,
  stopped: () => boolean,
  freshness: number[],
): Promise<void> {
  let pending = samples
  while (pending.length > 0 && !stopped()) {
    const started = performance.now()
    const counts = await partnerCounts(api, did)
    const at = performance.now()
    pending = pending.filter((s) => {
      const sent = sentAt[s.frame] as number
      if (sent === 0 || (counts.get(s.key) ?? 0) < s.expected) return true
      freshness.push(at - sent)
      return false
    })
    await new Promise((r) => setTimeout(r, Math.max(0, pollMs - (at - started))))
  }
  // What never showed, with the count the API last gave: enough to tell a lost write from a miscount.
  if (pending.length > 0) {
    const counts = await partnerCounts(api, did)
    for (const s of pending)
      process.stderr.write(
        `unseen: ${did} -> ${s.key} #${s.expected} (frame ${s.frame}): shows ${counts.get(s.key) ?? 0}\n`,
      )
  }
}
