import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import wt from 'node:worker_threads'
import zlib from 'node:zlib'
import { TEST_REDIS_URL } from '@circles/testkit'

// A real atproto network from @atproto/dev-env: PLC, a PDS and the Bluesky AppView (which needs the
// Postgres and Redis that run on this machine). Each run uses its own Postgres schema and drops it after.

export const DB_POSTGRES_URL =
  process.env.DB_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres'

export interface AppViewNetwork {
  /** The AppView's URL: what APPVIEW_URL points at. */
  appviewUrl: string
  // biome-ignore lint/suspicious/noExplicitAny: dev-env's SeedClient generics are not worth spelling out here
  seed: any
  processAll(): Promise<void>
  close(): Promise<void>
}

/**
 * dev-env's ozone pulls @atproto-labs/fetch-node 0.4, which imports undici 6, 7 and 8 statically and picks
 * one by Node version at run time. undici 8 (for Node 26) calls two Node 22 APIs while loading, so on Node 20
 * the import itself throws. Those two get inert stand-ins; undici 8 is then loaded but never used here.
 */
function shimNode20(): void {
  const z = zlib as unknown as Record<string, unknown>
  z.createZstdDecompress ??= () => {
    throw new Error('zstd needs Node 22')
  }
  const w = wt as unknown as Record<string, unknown>
  w.markAsUncloneable ??= () => {}
}

/** A schema name of letters and underscores only (dev-env's rule). */
function schemaName(): string {
  const letters = [...randomBytes(8)].map((b) => String.fromCharCode(97 + (b % 26))).join('')
  return `fart_endtoend_${letters}`
}

export async function startAppViewNetwork(): Promise<AppViewNetwork> {
  process.env.REDIS_HOST ??= new URL(TEST_REDIS_URL).host
  shimNode20()
  const { TestNetwork } = await import('@atproto/dev-env')
  const dbPostgresSchema = schemaName()
  // dev-env puts the PDS's data and blob directories under os.tmpdir(): point that at a private directory
  // while it starts, so close() can remove exactly what it left.
  const dir = await mkdtemp(join(tmpdir(), 'fart-endtoend-'))
  const savedTmp = process.env.TMPDIR
  process.env.TMPDIR = dir
  let network: Awaited<ReturnType<typeof TestNetwork.create>>
  try {
    network = await TestNetwork.create({ dbPostgresUrl: DB_POSTGRES_URL, dbPostgresSchema })
  } finally {
    if (savedTmp === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = savedTmp
  }
  const seed = network.getSeedClient()
  return {
    appviewUrl: network.bsky.url,
    seed,
    processAll: () => network.processAll(),
    async close() {
      await network.close()
      await rm(dir, { recursive: true, force: true })
      // dev-env leaves its Postgres schemas behind: drop ours (psql ships with the Postgres here).
      const list = spawnSync(
        'psql',
        [
          DB_POSTGRES_URL,
          '-Atc',
          `SELECT nspname FROM pg_namespace WHERE nspname LIKE '%${dbPostgresSchema}'`,
        ],
        { encoding: 'utf8' },
      )
      for (const name of (list.stdout ?? '').split('\n').filter((n) => /^[a-z_]+$/.test(n))) {
        spawnSync('psql', [DB_POSTGRES_URL, '-c', `DROP SCHEMA IF EXISTS "${name}" CASCADE`], {
          stdio: 'ignore',
        })
      }
    },
  }
}
