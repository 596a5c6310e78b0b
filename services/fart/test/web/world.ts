import { DAY_MS, HOUR_MS, type InteractionKind } from '@circles/core'
import { rememberDids } from '@circles/interaction-index'
import { pollUntil } from '@circles/testkit'
import type { FastifyInstance } from 'fastify'
import { did, type Harness, type HarnessOptions, startHarness, writeDayBlob } from '../helpers.js'

// The web suite's data: a small network shaped like `pnpm demo`'s (simN accounts named as its local PDS names
// them, "Simulated N"), written into a private key prefix with the real index writer and day-blob encoder.
// Every figure is fixed, every time is anchored on Date.now(): the pictures are the same from day to day
// except for the dates they print, which the screenshot test masks.

export interface Sim {
  did: string
  handle: string
  name: string
}

const COUNT = 13
/** The demo's handles are `sim<i>x<tag><i>.test` with a random tag; this suite's tag is fixed. */
export const SIMS: readonly Sim[] = Array.from({ length: COUNT }, (_, i) => ({
  did: did(100 + i),
  handle: `sim${i}xdemo${i}.test`,
  name: `Simulated ${i + 1}`,
}))
const sim = (i: number) => SIMS[i] as Sim
/** Whose circle and history the suite draws. */
export const CENTRE = sim(0)
/** Its strongest partner: the one the navigation test clicks. */
export const PARTNER = sim(1)
/** An account that opted out after interacting with the centre. */
export const OPTED_OUT = sim(12)

/** Each page as the suite opens it: name, path, and a selector of what its first content draws. */
export const PAGES = [
  ['explorer', `/?actor=${CENTRE.handle}`, '#list li'],
  ['network', '/stats', '#top-authors li a'],
  ['history', `/history?actor=${CENTRE.handle}`, '#chart-sent canvas'],
] as const

const KINDS: InteractionKind[] = ['reply', 'quote', 'repost', 'like']
/** Days of history written for the centre and its partner. */
export const HISTORY_DAYS = 30

/** The live index: the centre with nine partners both ways, the partner with four of its own. */
async function seedCircles(h: Harness): Promise<void> {
  for (let i = 1; i <= 9; i++) {
    const p = sim(i).did
    await h.link(CENTRE.did, p, { like: 14 - i, reply: i % 3, repost: i % 2 })
    await h.link(p, CENTRE.did, { like: (i * 5) % 7, quote: i % 4 === 0 ? 1 : 0, reply: i % 2 })
  }
  for (let i = 2; i <= 5; i++) {
    await h.link(PARTNER.did, sim(i + 4).did, { like: 6 - i, reply: 1 })
    await h.link(sim(i + 4).did, PARTNER.did, { repost: i - 1 })
  }
  await h.link(CENTRE.did, OPTED_OUT.did, { like: 30, reply: 5 })
  await h.link(OPTED_OUT.did, CENTRE.did, { like: 30 })
}

/**
 * HISTORY_DAYS days for `owner` with partners taking turns at the top (the opted-out account, if among them,
 * first every day: the route must leave it out); the newest two days partial.
 */
async function seedHistory(h: Harness, owner: Sim, partners: readonly Sim[]): Promise<void> {
  const today = Math.floor(Date.now() / DAY_MS)
  for (let back = 0; back < HISTORY_DAYS; back++) {
    const rows = (shift: number) =>
      partners.map((p, i): [string, InteractionKind, number] => [
        p.did,
        KINDS[(i + shift) % 4] as InteractionKind,
        1 + ((i * 7 + back * 3 + shift) % 11) + (p === OPTED_OUT ? 30 : 0),
      ])
    await writeDayBlob(h, owner.did, 's', today - back, rows(0))
    await writeDayBlob(h, owner.did, 'r', today - back, rows(1))
  }
  await rememberDids(h.t.redis, h.t.schema, [owner.did, ...partners.map((p) => p.did)])
}

/** The scheduler's stats document: 48 hours ending at the last UTC midnight, so hour ticks fall alike daily. */
/** 48 hours of the stats document from `first` (an hour number): a wave, so a chart has a shape. */
export function wavyHours(first: number) {
  return Array.from({ length: 48 }, (_, i) => {
    const hour = first + i
    const wave = 1 + Math.sin(i / 4)
    return {
      hour,
      start: new Date(hour * HOUR_MS).toISOString(),
      like: Math.round(900 * wave),
      repost: Math.round(200 * wave),
      reply: Math.round(150 * wave) + i,
      quote: Math.round(40 * wave),
    }
  })
}

export function statsDocument(now: number) {
  const hours = wavyHours(Math.floor(now / DAY_MS) * 24 - 48)
  // The opted-out account ranks first in every list: the route must drop it.
  const ranked = (shift: number) =>
    [OPTED_OUT, ...SIMS.slice(shift % 12, 12), ...SIMS.slice(0, shift % 12)].map((s, i) => ({
      did: s.did,
      count: 900 - i * 37 - shift * 5,
    }))
  const side = (base: number) =>
    Object.fromEntries(['all', ...KINDS].map((k, j) => [k, ranked(base + j)]))
  return {
    version: 1,
    generatedAtMs: now - 60_000,
    hours,
    top: { authors: side(0), subjects: side(5) },
  }
}

export interface World {
  h: Harness
  /** http://127.0.0.1:<port> */
  base: string
}

/** A harness listening on loopback, seeded; `options.routes` may add routes (a benchmark's baseline page). */
export async function startWorld(options: HarnessOptions = {}): Promise<World> {
  const h = await startHarness({}, options)
  for (const [i, s] of SIMS.entries()) {
    h.appview.profiles.set(s.did, {
      did: s.did,
      handle: s.handle,
      displayName: s.name,
      avatar: i % 3 === 0,
    })
  }
  await seedCircles(h)
  await seedHistory(h, CENTRE, [...SIMS.slice(1, 10), OPTED_OUT])
  await seedHistory(h, PARTNER, SIMS.slice(5, 10))
  await h.t.redis.set(
    h.t.schema.rollupCursor,
    String((Math.floor(Date.now() / DAY_MS) - 1) * 24 + 5),
  )
  await h.t.redis.hset(h.t.schema.firehoseMetrics, {
    state: 'connected',
    rate: '412',
    lagMs: '850',
  })
  await h.t.redis.set(h.t.schema.globalStats, JSON.stringify(statsDocument(Date.now())))
  await h.t.redis.sadd(h.t.schema.optOuts, OPTED_OUT.did)
  await warmStats(h.app)
  await warmCircles(h.app)
  const base = await h.app.listen({ host: '127.0.0.1', port: 0 })
  return { h, base }
}

/**
 * The profiles and avatars the pages show, in the cache before a browser asks: a page waits at most
 * APPVIEW_TIMEOUT_MS (1 s here) for the AppView and then shows DIDs and initials, which a loaded machine
 * could make a test see instead of names.
 */
async function warmCircles(app: FastifyInstance): Promise<void> {
  for (const who of [CENTRE, PARTNER]) {
    const complete = await pollUntil(
      async () => (await app.inject(`/v1/circles/${who.did}`)).json().profilesComplete as boolean,
      (ok) => ok,
      { timeoutMs: 10_000 },
    )
    if (!complete) throw new Error(`the circle of ${who.handle} lacked profiles for 10 s`)
    await app.inject(`/v1/circles/${who.did}.svg`)
  }
}

/** The stats route names top-list accounts after answering; ask until it does, as a second visitor would. */
async function warmStats(app: FastifyInstance): Promise<void> {
  type Top = { top: Record<string, Record<string, { handle?: string }[]>> }
  const named = (body: Top) =>
    Object.values(body.top).every((side) =>
      Object.values(side).every((list) => list.every((r) => r.handle)),
    )
  const body = await pollUntil(async () => (await app.inject('/v1/stats')).json() as Top, named, {
    timeoutMs: 10_000,
  })
  if (!named(body)) throw new Error('the stats route did not name its top accounts within 10 s')
}
