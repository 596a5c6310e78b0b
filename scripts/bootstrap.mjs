// Runs before anything is built, so plain JavaScript: checks Node, installs dependencies on a fresh clone,
// builds with tsc, then hands over to the built command in packages/ops.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const root = join(dirname(fileURLToPath(import.meta.url)), '..')

function fail(message) {
  process.stderr.write(`${message}\n`)
  process.exit(1)
}

function run(cmd, args, what, env = process.env) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env })
  if (r.error) fail(`${what} could not run: ${r.error.message}`)
  if (r.status !== 0) fail(`${what} failed (exit code ${r.status}); see above.`)
}

/** @param {string[]} projects tsc --build targets (default: the whole workspace) */
export function prepare(projects = []) {
  const major = Number(process.versions.node.split('.')[0])
  if (major < 22) {
    fail(
      `Node ${process.versions.node} is too old: install Node 22 or newer (an LTS line: 26, 24 or 22).`,
    )
  }
  const unlock = lock()
  try {
    installAndBuild(projects)
  } finally {
    unlock()
  }
}

// `pnpm start` and `pnpm test` run this each; two at once on a fresh clone would run two installs into one
// node_modules and two builds into one dist. The second waits for the first (a directory is created
// atomically; a lock whose process is gone is taken over).
function lock() {
  const dir = join(root, '.bootstrap.lock')
  let told = false
  for (;;) {
    try {
      mkdirSync(dir)
      writeFileSync(join(dir, 'pid'), String(process.pid))
      const unlock = () => rmSync(dir, { recursive: true, force: true })
      process.once('exit', unlock)
      return () => {
        process.off('exit', unlock)
        unlock()
      }
    } catch (err) {
      if (err.code !== 'EEXIST') throw err
    }
    const pid = Number(readIfThere(join(dir, 'pid')))
    if (pid > 0 && !alive(pid)) {
      rmSync(dir, { recursive: true, force: true })
      continue
    }
    if (!told)
      process.stdout.write(`Waiting for another install or build here (pid ${pid || '?'})...\n`)
    told = true
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200)
  }
}

function readIfThere(file) {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

// Native addons (better-sqlite3, for the local PDS of the tests) compile against the headers npm's nodedir
// names, which an .npmrc may pin to another Node's (nodedir=/usr on these machines: Node 20's): such a build
// does not load on the Node that runs. The running Node's own headers, where its install has them, win.
function installEnv() {
  const prefix = dirname(dirname(process.execPath))
  if (!existsSync(join(prefix, 'include', 'node', 'common.gypi'))) return process.env
  return { ...process.env, npm_config_nodedir: prefix }
}

function installAndBuild(projects) {
  if (!existsSync(join(root, 'node_modules', '.modules.yaml'))) {
    process.stdout.write('Installing dependencies (pnpm install --frozen-lockfile)...\n')
    // Under `pnpm start` npm_execpath is pnpm itself; otherwise use the pnpm on the PATH.
    const execPath = process.env.npm_execpath
    if (execPath && /pnpm/.test(execPath)) {
      run(
        process.execPath,
        [execPath, 'install', '--frozen-lockfile'],
        'pnpm install',
        installEnv(),
      )
    } else {
      run('pnpm', ['install', '--frozen-lockfile'], 'pnpm install', installEnv())
    }
  }
  process.stdout.write(
    `Building (tsc --build${projects.length ? ` ${projects.join(' ')}` : ''})...\n`,
  )
  run(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '--build', ...projects],
    'tsc',
  )
}

/** Imports a built module of packages/ops and runs its main(); its return value is the exit code. */
export async function runMain(file) {
  const mod = await import(pathToFileURL(join(root, 'packages/ops/dist/src', file)).href)
  try {
    process.exitCode = await mod.main(process.argv.slice(2))
  } catch (err) {
    // A bad setting names its variable: that line is the whole story, no stack needed.
    if (err?.name !== 'ConfigError') throw err
    process.stderr.write(`${err.message}\n`)
    process.exitCode = 1
  }
}
