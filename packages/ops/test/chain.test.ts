import { rmSync } from 'node:fs'
import {
  freePort,
  InteractionLedger,
  LEDGER_KINDS,
  type PrivateRedis,
  pollUntilEqual,
  startRedisServer,
} from '@circles/testkit'
import {
  createScriptAccounts,
  LedgerWriter,
  type LocalPds,
  type PdsAccount,
  runLedgerScript,
  type ScriptAccounts,
  startLocalPds,
} from '@circles/testkit/pds'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DemoAppView, startDemoAppView } from '../src/demo-appview.js'
import { loadEcosystemApps } from '../src/ecosystem.js'
import { repoRoot } from '../src/paths.js'
import { createSupervisor, type Supervisor } from '../src/supervisor.js'
import { tempDir } from '../src/test-helpers.js'
import {
  expectedCircles,
  expectedDrawings,
  expectedInteractions,
  expectedStats,
  expectedVariants,
  GONE,
  getJson,
  leftoversOf,
  Names,
  readCircles,
  readDrawings,
  readGone,
  readInteractions,
  readStats,
  readVariants,
} from './chain-views.js'

// The whole chain as it runs for real: a local PDS whose accounts act from a script, the four built services
// (the ecosystem's process list, through the supervisor `pnpm start` uses) on a private Redis, and the API
// asked over HTTP. What the API must answer comes from the script's own ledger of who did what to whom
// (testkit's ledger.ts), never from the project's decoder. Then one account deletes itself on the PDS and
// must vanish from everything, both ways.

describe('the whole chain: PDS -> firehose -> stream -> indexer -> scheduler -> API', () => {
  let redis: PrivateRedis
  let pds: LocalPds
  let appview: DemoAppView
  let supervisor: Supervisor
  let api: string
  let acct: ScriptAccounts
  let names: Names
  const logDir = tempDir('chain-logs')
  const output: string[] = []
  const ledger = new InteractionLedger()

  beforeAll(async () => {
    redis = await startRedisServer()
    pds = await startLocalPds()
    acct = await createScriptAccounts(pds)
    names = new Names(acct)
    // The demo's stand-in AppView, which keeps answering for the deleted account: so its absence below is
    // the indexer's purge, not the AppView forgetting it.
    appview = await startDemoAppView(
      Object.entries(acct).map(([name, a]) => ({
        did: a.did,
        handle: a.handle,
        displayName: name,
      })),
    )
    const port = await freePort()
    api = `http://127.0.0.1:${port}`
    supervisor = createSupervisor(loadEcosystemApps(repoRoot()), {
      cwd: repoRoot(),
      env: servicesEnv(redis.url, pds.firehoseUrl, appview.url, port),
      logDir,
      format: 'json',
      print: (line) => output.push(line),
    })
    supervisor.start()
  })

  afterAll(async () => {
    await supervisor?.stop()
    await appview?.close()
    await pds?.close()
    await redis?.stop()
    rmSync(logDir, { recursive: true, force: true })
  })

  /** Polls the API until every answer about the accounts `left` (and the deleted eve) is the ledger's. */
  async function expectAnswersAfterDeletion(left: PdsAccount[]): Promise<void> {
    const expected = {
      interactions: expectedInteractions(ledger, names, left),
      circles: expectedCircles(ledger, names, left),
      variants: expectedVariants(ledger, names, acct.ali),
      drawings: expectedDrawings(ledger, names, left),
      gone: GONE,
    }
    const seen = await pollUntilEqual(async () => {
      return {
        interactions: await readInteractions(api, names, left),
        circles: await readCircles(api, names, left),
        variants: await readVariants(api, names, acct.ali),
        drawings: await readDrawings(api, names, left),
        gone: await readGone(api, acct.eve),
      }
    }, expected)
    expect(seen, tail(output)).toEqual(expected)
  }

  it('counts what the accounts did, forgets a deleted account both ways, and reports it in stats', async () => {
    const w = new LedgerWriter(pds, ledger)
    await runLedgerScript(w, acct)
    const { live, undone } = ledger.coverage()
    for (const k of LEDGER_KINDS) {
      expect(live[k], `live ${k}s in the script`).toBeGreaterThan(0)
      expect(undone[k], `undone ${k}s in the script`).toBeGreaterThan(0)
    }
    expect(ledger.selfInteractions).toBeGreaterThanOrEqual(8)

    // Before the deletion: eve's interactions must have reached the index, or her purge proves nothing.
    const everyone = Object.values(acct)
    const indexed = expectedInteractions(ledger, names, everyone)
    const before = await pollUntilEqual(() => readInteractions(api, names, everyone), indexed)
    expect(before, tail(output)).toEqual(indexed)
    expect(Object.keys(indexed.eve ?? {}).length).toBeGreaterThan(0)

    await w.deleteAccount(acct.eve)
    const deletedAt = Date.now()
    const left = everyone.filter((a) => a !== acct.eve)
    await expectAnswersAfterDeletion(left)

    // The scheduler's stats job runs every second here: its next document must agree with the ledger.
    const stats = expectedStats(ledger, names)
    const doc = await pollUntilEqual(() => readStats(api, names, deletedAt), stats)
    expect(doc, tail(output)).toEqual(stats)
    // And nothing else names her: the roll-up's forget step (every second here) took the rest.
    const reader = new Redis(redis.url)
    try {
      const left = await pollUntilEqual(() => leftoversOf(reader, 'chain:', acct.eve.did), [])
      expect(left, tail(output)).toEqual([])
    } finally {
      reader.disconnect()
    }
    // No service crashed on the way (the supervisor would have hidden it by restarting the service).
    expect(output.filter((l) => /restarting in|in a row|did not stop/.test(l))).toEqual([])
  }, 100_000)

  // As for circles (the fart README): a deleted account's interactions are 404 AccountUnavailable, not an
  // empty 200 that reads as "no interactions" (what the route answered until 2026-12-06).
  it('answers 404 for a deleted account’s interactions, as for its circle', async () => {
    expect(ledger.isDeleted(acct.eve.did), 'runs after the chain test').toBe(true)
    const { status, body } = await getJson(`${api}/v1/interactions/${acct.eve.did}`)
    expect({ status, error: (body as { error?: string }).error }).toEqual({
      status: 404,
      error: 'AccountUnavailable',
    })
  })

  // Redis comes back empty (FLUSHALL: a restart without persistence) under the running pipeline, with the
  // PDS quiet. Nobody restarts anything: the firehose notices its cursor gone, reads the PDS again over its
  // refill window, the indexer recreates its group, and every answer is the undisturbed run's again.
  it('refills itself after Redis lost all its data: the same answers as before', async () => {
    expect(ledger.isDeleted(acct.eve.did), 'runs after the chain test').toBe(true)
    const left = Object.values(acct).filter((a) => a !== acct.eve)
    const admin = new Redis(redis.url)
    try {
      await admin.flushall()
    } finally {
      admin.disconnect()
    }
    await expectAnswersAfterDeletion(left)
    expect(
      output.some((l) => /the stored cursor is gone/.test(l)),
      tail(output),
    ).toBe(true)
    // The job schedules went with Redis: the scheduler puts them back (the stats below need it).
    const rescheduled = await pollUntilEqual(
      async () => output.some((l) => /scheduling again/.test(l)),
      true,
    )
    expect(rescheduled, tail(output)).toBe(true)
    expect(output.filter((l) => /restarting in|in a row|did not stop/.test(l))).toEqual([])
  }, 60_000)

  /** Polls until every answer equals what the ledger says with `out` opted out; returns the ms it took. */
  async function expectOptedOut(out: PdsAccount, since: number): Promise<number> {
    const first = await pollUntilEqual(
      async () => (await getJson(`${api}/v1/circles/${out.handle}`)).status,
      403,
      { timeoutMs: 5000, pollMs: 50 },
    )
    const ms = Date.now() - since
    expect(first, `${names.of(out.did)}'s circle within 5 s\n${tail(output)}`).toBe(403)
    ledger.optOut(out.did)
    const others = Object.values(acct).filter((a) => a !== acct.eve && a !== out)
    const expected = {
      interactions: expectedInteractions(ledger, names, others),
      circles: expectedCircles(ledger, names, others),
      own: [403, 403, 403],
      // (The firehose's own counters are left out: since the FLUSHALL above they count from the loss.)
      stats: { ...expectedStats(ledger, names), firehose: null },
    }
    const seen = await pollUntilEqual(async () => {
      const own: number[] = []
      for (const path of ['circles', 'circles', 'interactions']) {
        const suffix: string = own.length === 1 ? '.svg' : ''
        own.push((await getJson(`${api}/v1/${path}/${out.handle}${suffix}`)).status)
      }
      return {
        interactions: await readInteractions(api, names, others),
        circles: await readCircles(api, names, others),
        own,
        stats: await readStats(api, names, since).then((r) =>
          typeof r === 'string' ? r : { ...r, firehose: null },
        ),
      }
    }, expected)
    expect(seen, tail(output)).toEqual(expected)
    return ms
  }

  /** Polls until `back` is served again, then checks that only what it does from now on counts. */
  async function expectBack(back: PdsAccount, w: LedgerWriter): Promise<void> {
    const status = await pollUntilEqual(
      async () => (await getJson(`${api}/v1/circles/${back.handle}`)).status,
      200,
      { timeoutMs: 5000, pollMs: 50 },
    )
    expect(status, tail(output)).toBe(200)
    // Its indexer side is reopened a moment after the set moved: give the sync its turn first.
    await new Promise((r) => setTimeout(r, 500))
    await w.like(back, await w.post(acct.ali))
    const expected = expectedInteractions(ledger, names, [back, acct.ali])
    const seen = await pollUntilEqual(
      () => readInteractions(api, names, [back, acct.ali]),
      expected,
    )
    expect(seen, tail(output)).toEqual(expected)
  }

  it('an account that blocks the service account, carries the self-label or is opted out by an admin is gone everywhere within seconds; undoing it counts only what comes after', async () => {
    const w = new LedgerWriter(pds, ledger)
    const { bob, cat, dan } = acct
    // A block of anyone else is nothing, as is the label on a post: bob and cat stay served.
    await bob.agent.app.bsky.graph.block.create(
      { repo: bob.did },
      { subject: cat.did, createdAt: new Date().toISOString() },
    )
    await cat.agent.com.atproto.repo.createRecord({
      repo: cat.did,
      collection: 'app.bsky.feed.post',
      record: {
        $type: 'app.bsky.feed.post',
        text: 'labelled post',
        createdAt: new Date().toISOString(),
        labels: NO_UNAUTHENTICATED,
      },
    })
    await new Promise((r) => setTimeout(r, 1000))
    for (const a of [bob, cat]) {
      expect((await getJson(`${api}/v1/circles/${a.handle}`)).status, names.of(a.did)).toBe(200)
    }

    let since = Date.now()
    const blocked = await bob.agent.app.bsky.graph.block.create(
      { repo: bob.did },
      { subject: SERVICE_DID, createdAt: new Date().toISOString() },
    )
    const byBlock = await expectOptedOut(bob, since)
    await bob.agent.app.bsky.graph.block.delete({
      repo: bob.did,
      rkey: blocked.uri.split('/').pop() as string,
    })
    await expectBack(bob, w)

    since = Date.now()
    const profile = (labels?: object) =>
      cat.agent.com.atproto.repo.putRecord({
        repo: cat.did,
        collection: 'app.bsky.actor.profile',
        rkey: 'self',
        record: { $type: 'app.bsky.actor.profile', displayName: 'cat', ...(labels && { labels }) },
      })
    await profile(NO_UNAUTHENTICATED)
    const byLabel = await expectOptedOut(cat, since)
    await profile()
    await expectBack(cat, w)

    // An admin's opt-out: the same, until the admin takes it back.
    const admin = (method: 'PUT' | 'DELETE') =>
      fetch(`${api}/admin/opt-outs/${dan.did}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      }).then((r) => r.json())
    since = Date.now()
    expect(await admin('PUT')).toEqual({ did: dan.did, member: true, changed: true })
    const byAdmin = await expectOptedOut(dan, since)
    expect(await admin('DELETE')).toEqual({ did: dan.did, member: false, changed: true })
    await expectBack(dan, w)
    console.info(
      `opt-out seen by the API: ${byBlock} ms after the block, ${byLabel} ms after the label, ${byAdmin} ms after the admin's PUT`,
    )
    expect(output.filter((l) => /restarting in|in a row|did not stop/.test(l))).toEqual([])
  }, 120_000)
})

/** The service's own account in this test: blocking it opts out (any valid DID will do as a subject). */
const SERVICE_DID = 'did:plc:circlesserviceaaaaaaaaaa'
const ADMIN_TOKEN = 'chain-test-admin-token-0123456789'
const NO_UNAUTHENTICATED = {
  $type: 'com.atproto.label.defs#selfLabels',
  values: [{ val: '!no-unauthenticated' }],
}

function tail(lines: readonly string[]): string {
  return `services' last output:\n${lines.slice(-40).join('\n')}`
}

function servicesEnv(redisUrl: string, relay: string, appviewUrl: string, port: number) {
  return {
    ...(process.env as Record<string, string>),
    REDIS_URL: redisUrl,
    REDIS_PREFIX: 'chain:',
    RELAY_URL: relay,
    // From the PDS's first event: nothing the script wrote can be missed, whenever the firehose connects.
    FIREHOSE_CURSOR: '0',
    // Memory only: the ecosystem's default checkpoint and lists files are in the repository's data/.
    FIREHOSE_CHECKPOINT_FILE: '',
    API_LISTS_FILE: '',
    FIREHOSE_METRICS_MS: '500',
    INDEXER_METRICS_MS: '500',
    // The stats job as often as the scheduler allows, so that its document follows within seconds.
    STATS_EVERY_MS: '1000',
    ROLLUP_EVERY_MS: '1000',
    SCHEDULER_HEARTBEAT_MS: '1000',
    HOST: '127.0.0.1',
    PORT: String(port),
    APPVIEW_URL: appviewUrl,
    SERVICE_DID,
    ADMIN_TOKEN,
    INDEXER_OPT_OUT_SYNC_MS: '100',
    RATE_LIMIT_MAX: '0',
    // Circles are cached: the shortest cache and none in process, so that answers follow the deletion soon.
    CIRCLE_CACHE_TTL_SECONDS: '1',
    LOCAL_CACHE_MS: '0',
    LOG_LEVEL: 'warn',
  }
}
