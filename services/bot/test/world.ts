import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type DemoAppView, startDemoAppView } from '@circles/ops'
import { createSchema } from '@circles/redis-schema'
import { connectRedis } from '@circles/redis-wire'
import {
  createTestRedis,
  freePort,
  InteractionLedger,
  type PrivateRedisCluster,
  pollUntil,
  type TestRedis,
} from '@circles/testkit'
import {
  LedgerWriter,
  type LocalPds,
  type PdsAccount,
  type RecordRef,
  startLocalPds,
} from '@circles/testkit/pds'

// The whole pipeline around the bot, real: a local PDS (its firehose the relay), the built firehose,
// indexer and fart API as child processes on a private key prefix, and a stand-in AppView for handles.
// The bot itself runs in the test process or as a child (to be killed with -9).

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const main = (service: string) => resolve(ROOT, 'services', service, 'dist/src/main.js')

export const ADMIN_TOKEN = 'bot-test-admin-token-0123456789'
export const SESSION_KEY = 'cd'.repeat(32)

export interface Child {
  name: string
  proc: ChildProcess
  output: string[]
}

export interface World {
  pds: LocalPds
  t: TestRedis
  appview: DemoAppView
  apiUrl: string
  bot: PdsAccount
  appPassword: string
  /** alice interacts with bob most, carol next, dave least. */
  alice: PdsAccount
  bob: PdsAccount
  carol: PdsAccount
  dave: PdsAccount
  writer: LedgerWriter
  /** The environment of a bot process in this world. */
  botEnv(extra?: Record<string, string>): Record<string, string>
  spawn(service: string, env: Record<string, string>): Child
  /** Every process spawned in this world (the pipeline's and the bots'), with its output. */
  children(): Child[]
  close(): Promise<void>
}

export async function stopChild(child: Child, signal: NodeJS.Signals): Promise<number | null> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return child.proc.exitCode
  const exited = once(child.proc, 'exit')
  child.proc.kill(signal)
  const [code] = (await exited) as [number | null]
  return code
}

/** Posts `text` as `author` with a mention facet of `bot` over its first word. */
export async function mention(
  author: PdsAccount,
  bot: PdsAccount,
  text: string,
  reply?: { root: RecordRef; parent: RecordRef },
): Promise<RecordRef> {
  const full = `@${bot.handle} ${text}`
  const record: Record<string, unknown> = {
    text: full,
    createdAt: new Date().toISOString(),
    facets: [
      {
        index: { byteStart: 0, byteEnd: Buffer.byteLength(`@${bot.handle}`) },
        features: [{ $type: 'app.bsky.richtext.facet#mention', did: bot.did }],
      },
    ],
  }
  if (reply) {
    const ref = (r: RecordRef) => ({ uri: r.uri, cid: r.cid })
    record.reply = { root: ref(reply.root), parent: ref(reply.parent) }
  }
  const res = await author.agent.post(record as never)
  return { uri: res.uri, cid: res.cid, author: author.did }
}

/** The world's Redis on a private Redis Cluster (its caller stops it): a client of it, its seeds. */
async function clusterRedis(cluster: PrivateRedisCluster): Promise<TestRedis> {
  const redis = connectRedis(cluster.target)
  const prefix = 'bot-e2e:'
  return {
    redis,
    url: cluster.target.redisUrl,
    prefix,
    schema: createSchema(prefix),
    async cleanup() {
      redis.disconnect()
    },
  }
}

/**
 * @param opts.cluster run the pipeline and the bot on this Redis Cluster (REDIS_CLUSTER_NODES, two stream
 *   shards) instead of the shared Redis
 */
export async function startWorld(opts: { cluster?: PrivateRedisCluster } = {}): Promise<World> {
  const cleanups: (() => Promise<unknown>)[] = []
  const close = async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined)
  }
  try {
    const pds = await startLocalPds()
    cleanups.push(() => pds.close())
    const t = opts.cluster ? await clusterRedis(opts.cluster) : await createTestRedis('bot-e2e')
    cleanups.push(() => t.cleanup())
    const [bot, alice, bob, carol, dave] = (await Promise.all(
      ['circlesbot', 'alice', 'bob', 'carol', 'dave'].map((n) => pds.createAccount(n)),
    )) as [PdsAccount, PdsAccount, PdsAccount, PdsAccount, PdsAccount]
    const appPassword = (
      await bot.agent.com.atproto.server.createAppPassword({ name: 'circles-bot' })
    ).data.password
    const appview = await startDemoAppView(
      [bot, alice, bob, carol, dave].map(({ did, handle }) => ({ did, handle })),
    )
    cleanups.push(() => appview.close())
    const port = await freePort()
    const apiUrl = `http://127.0.0.1:${port}`
    const common = {
      REDIS_URL: t.url,
      REDIS_PREFIX: t.prefix,
      LOG_LEVEL: 'warn',
      BOT_DID: bot.did,
      ...(opts.cluster ? { REDIS_CLUSTER_NODES: opts.cluster.seeds, FIREHOSE_SHARDS: '2' } : {}),
    }
    const children: Child[] = []
    const spawnChild = (service: string, env: Record<string, string>): Child => {
      const output: string[] = []
      const proc = spawn(process.execPath, [main(service)], {
        env: { ...process.env, ...common, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      proc.stdout?.on('data', (d: Buffer) => output.push(d.toString()))
      proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()))
      const child = { name: service, proc, output }
      children.push(child)
      return child
    }
    cleanups.push(() => Promise.all(children.map((c) => stopChild(c, 'SIGKILL'))))
    spawnChild('firehose', {
      RELAY_URL: pds.firehoseUrl,
      FIREHOSE_CURSOR: '0',
      FIREHOSE_FLUSH_MS: '20',
    })
    spawnChild('indexer', { INDEXER_BLOCK_MS: '100' })
    spawnChild('fart', {
      HOST: '127.0.0.1',
      PORT: String(port),
      APPVIEW_URL: appview.url,
      ADMIN_TOKEN,
      BACKFILL_ON_REQUEST: 'false',
      CIRCLE_CACHE_TTL_SECONDS: '1',
    })

    const writer = new LedgerWriter(pds, new InteractionLedger())
    // alice's circle: bob (three replies, a like), carol (a like, a repost), dave (a like).
    const posts = await Promise.all([bob, carol, dave].map((a) => writer.post(a)))
    const [pb, pc, pd] = posts as [RecordRef, RecordRef, RecordRef]
    for (let i = 0; i < 3; i++) await writer.post(alice, { reply: { root: pb, parent: pb } })
    await writer.like(alice, pb)
    await writer.like(alice, pc)
    await writer.repost(alice, pc)
    await writer.like(alice, pd)

    const circleOf = async (did: string) => {
      const res = await fetch(`${apiUrl}/v1/circles/${did}`)
      return res.ok ? ((await res.json()) as { rings: { members: unknown[] }[] }) : null
    }
    const c = await pollUntil(
      () => circleOf(alice.did),
      (v) => (v?.rings.flatMap((r) => r.members).length ?? 0) >= 3,
      { timeoutMs: 60_000, pollMs: 250 },
    )
    if (!c) {
      throw new Error(`no circle of alice: ${children.map((ch) => ch.output.join('')).join('\n')}`)
    }

    return {
      pds,
      t,
      appview,
      apiUrl,
      bot,
      appPassword,
      alice,
      bob,
      carol,
      dave,
      writer,
      botEnv: (extra = {}) => ({
        ...common,
        BOT_IDENTIFIER: bot.handle,
        BOT_APP_PASSWORD: appPassword,
        BOT_SESSION_KEY: SESSION_KEY,
        BOT_PLC_URL: pds.plcUrl,
        BOT_API_URL: apiUrl,
        BOT_BLOCK_MS: '100',
        BOT_METRICS_MS: '500',
        ...extra,
      }),
      spawn: spawnChild,
      children: () => children,
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}
