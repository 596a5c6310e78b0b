import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createTestRedis, freePort, type TestRedis } from '@circles/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// `pnpm start` through pnpm itself, and ctrl-C as a terminal sends it: SIGINT to the whole foreground
// process group (pnpm, the shell it runs scripts in, the supervisor). pnpm reported "ELIFECYCLE Command
// failed" (exit 130) when its script shell died of the signal, though every service had stopped cleanly.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

/** pnpm as the test runner was started (`pnpm test` sets npm_execpath), else the one on the PATH. */
function pnpmCommand(): [string, string[]] {
  const exec = process.env.npm_execpath
  if (exec && /pnpm/.test(exec)) return [process.execPath, [exec]]
  return ['pnpm', []]
}

describe('pnpm start', () => {
  let t: TestRedis
  let tmp: string
  let child: ChildProcess | undefined

  beforeAll(async () => {
    t = await createTestRedis('start')
    tmp = mkdtempSync(join(tmpdir(), 'circles-start-'))
  })
  afterAll(async () => {
    if (child && child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGKILL')
    await t.cleanup()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('stops every service on ctrl-C and exits 0, without a pnpm error', async () => {
    const port = await freePort()
    const [cmd, pre] = pnpmCommand()
    child = spawn(cmd, [...pre, 'start'], {
      cwd: ROOT,
      // Its own process group, as a terminal's foreground job is, so SIGINT can go to the whole group.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        REDIS_URL: t.url,
        REDIS_PREFIX: t.prefix,
        PORT: String(port),
        // Nothing listens there: the firehose backs off, which is all this test needs of it.
        RELAY_URL: 'ws://127.0.0.1:9',
        LOG_DIR: join(tmp, 'logs'),
        DATA_DIR: join(tmp, 'data'),
        LOG_FORMAT: 'pretty',
        LOG_LEVEL: 'info',
      },
    })
    let output = ''
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString()
    })
    child.stderr?.on('data', (d: Buffer) => {
      output += d.toString()
    })
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>

    const deadline = Date.now() + 90_000
    while (!/fart API ready/.test(output) || !/indexer.*ready|consumer/i.test(output)) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`pnpm start did not come up:\n${output.slice(-3000)}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
    process.kill(-(child.pid as number), 'SIGINT')
    const [code, signal] = await exited
    expect({ code, signal }, output.slice(-3000)).toEqual({ code: 0, signal: null })
    expect(output).toMatch(/start all stopped/)
    expect(output).not.toMatch(/ELIFECYCLE|Command failed/)
  }, 150_000)
})
