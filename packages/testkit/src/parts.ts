import { spawnSync } from 'node:child_process'
import { appendFileSync, existsSync } from 'node:fs'
import { connect } from 'node:net'

// Parts of the machine some tests need (Chromium, Postgres, promtool). Without one, a local run skips those tests
// and names, once it ends, what was skipped and the command that installs it (the global setup below);
// under CI=true a missing part fails the run instead, so a green CI never hides a skipped test.

/** Env variable naming the file where skips are logged; set by `skipReportSetup` for the whole run. */
export const SKIP_LOG = 'CIRCLES_TEST_SKIP_LOG'

export class MissingPartError extends Error {
  override name = 'MissingPartError'
}

export interface Part {
  /** What is missing, e.g. "Chromium at /usr/bin/chromium". */
  what: string
  /** The one command that installs or starts it. */
  install: string
  /** The tests that need it, e.g. "the page test". */
  tests: string
}

/** True when `available`; otherwise false (skip) in a local run, a thrown error under CI=true. */
export function needPart(available: boolean, part: Part): boolean {
  if (available) return true
  if (isCi()) {
    throw new MissingPartError(
      `${part.tests} needs ${part.what}, which is missing, and CI=true fails rather than skip: ${part.install}`,
    )
  }
  const line = `${part.tests} skipped: no ${part.what} (install: ${part.install})`
  const log = process.env[SKIP_LOG]
  if (log) appendFileSync(log, `${JSON.stringify(part)}\n`)
  else console.warn(line)
  return false
}

function isCi(): boolean {
  const ci = process.env.CI
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false'
}

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Flags for headless Chromium on a machine without internet: no background connections to refuse. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export function haveChromium(tests: string): boolean {
  return needPart(existsSync(CHROMIUM_PATH), {
    what: `Chromium at ${CHROMIUM_PATH}`,
    install: 'apt-get install -y chromium (or CHROMIUM_PATH=/path/to/chromium)',
    tests,
  })
}

/** Whether Prometheus's `promtool` runs (Debian's `prometheus` package ships it). */
export function havePromtool(tests: string): boolean {
  return needPart(spawnSync('promtool', ['--version']).status === 0, {
    what: 'promtool',
    install: 'apt-get install -y --no-install-recommends prometheus',
    tests,
  })
}

/** Whether something accepts TCP connections at `url`'s host and port, within a second. */
export function reachable(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url)
  return new Promise((resolve) => {
    const sock = connect({ host: u.hostname, port: Number(u.port || defaultPort) })
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(1000)
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
    sock.once('timeout', () => done(false))
  })
}

export async function havePostgres(url: string, tests: string): Promise<boolean> {
  return needPart(await reachable(url, 5432), {
    what: `Postgres at ${url.replace(/\/\/[^@/]*@/, '//')}`,
    install:
      'apt-get install -y postgresql && pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start (or DB_POSTGRES_URL=...)',
    tests,
  })
}
