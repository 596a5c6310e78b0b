import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type AppSpec, createSupervisor, prettyLine } from './supervisor.js'
import { tempDir as makeTempDir } from './test-helpers.js'

const dirs: string[] = []
function tempDir(label: string): string {
  const dir = makeTempDir(label)
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

// Real child processes (tiny node scripts), real signals.

function script(dir: string, name: string, body: string): string {
  const file = join(dir, `${name}.mjs`)
  writeFileSync(file, body)
  return file
}

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 20))
  }
}

/**
 * A supervisor over `apps` that restarts fast and gives up after 3 quick crashes; `ends` records why an app
 * was given up (`gaveUp`) or stopped for good (`final`), as "<label>: <reason>".
 */
function fastSupervisor(dir: string, apps: AppSpec[]) {
  const lines: string[] = []
  const ends = { gaveUp: '', final: '' }
  const sup = createSupervisor(apps, {
    cwd: dir,
    env: {},
    logDir: dir,
    print: (l) => lines.push(l),
    restartDelayMs: 10,
    maxStartCrashes: 3,
    onGiveUp: (label, why) => {
      ends.gaveUp = `${label}: ${why}`
    },
    onFinalExit: (label, why) => {
      ends.final = `${label}: ${why}`
    },
  })
  sup.start()
  return { sup, lines, ends }
}

/** Runs one app under `fastSupervisor` until it gives up. */
async function untilGivenUp(dir: string, app: AppSpec) {
  const { sup, lines, ends } = fastSupervisor(dir, [app])
  await until(() => ends.gaveUp !== '')
  return { sup, lines, gaveUp: ends.gaveUp }
}

describe('supervisor', () => {
  it('runs instances with NODE_APP_INSTANCE, stops them gracefully on SIGTERM', async () => {
    const dir = tempDir('sup')
    const worker = script(
      dir,
      'worker',
      // The handler before the ready line: the supervisor may signal the moment it reads that line.
      `process.on('SIGTERM', () => { console.log('graceful stop'); process.exitCode = 0; process.exit() })
       setInterval(() => {}, 1000)
       console.log(JSON.stringify({ level: 30, msg: 'ready', instance: process.env.NODE_APP_INSTANCE }))`,
    )
    const lines: string[] = []
    const apps: AppSpec[] = [{ name: 'w', script: worker, instances: 2, killTimeoutMs: 3000 }]
    const sup = createSupervisor(apps, {
      cwd: dir,
      env: {},
      logDir: dir,
      print: (l) => lines.push(l),
    })
    sup.start()
    await until(() => lines.filter((l) => l.includes('ready')).length === 2)
    expect(sup.running()).toBe(2)
    expect(lines.some((l) => l.includes('w-0') && l.includes('"instance":"0"'))).toBe(true)
    expect(lines.some((l) => l.includes('w-1') && l.includes('"instance":"1"'))).toBe(true)
    await sup.stop()
    expect(sup.running()).toBe(0)
    expect(
      lines.filter((l) => l.includes('graceful stop')),
      lines.join('\n'),
    ).toHaveLength(2)
  })

  it('restarts a crashing app with growing delays, then gives up', async () => {
    const dir = tempDir('sup')
    const crasher = script(dir, 'crash', `console.log('boom'); process.exitCode = 3`)
    const { sup, lines, gaveUp } = await untilGivenUp(dir, { name: 'c', script: crasher })
    expect(lines.filter((l) => l.includes('restarting in'))).toEqual([
      expect.stringContaining('c exited with code 3; restarting in 10 ms'),
      expect.stringContaining('c exited with code 3; restarting in 20 ms'),
    ])
    expect(gaveUp).toMatch(/^c: exited with code 3; its last lines:\nboom/)
    await sup.stop()
  })

  it('does not restart an app after an exit code it declares final (stop_exit_codes), and gives nothing up', async () => {
    const dir = tempDir('sup')
    const refused = script(dir, 'refused', `console.log('login refused'); process.exitCode = 78`)
    const worker = script(dir, 'worker', `console.log('up'); setInterval(() => {}, 1000)`)
    const { sup, lines, ends } = fastSupervisor(dir, [
      { name: 'b', script: refused, stopExitCodes: [78] },
      { name: 'w', script: worker },
    ])
    await until(() => ends.final !== '')
    expect(ends.final).toMatch(/^b: exited with code 78; its last lines:\nlogin refused/)
    expect(lines.filter((l) => l.includes('restarting in'))).toEqual([])
    expect(ends.gaveUp).toBe('')
    await sup.stop()
  })

  it('kills an app that ignores SIGTERM after its kill timeout', async () => {
    const dir = tempDir('sup')
    const stubborn = script(
      dir,
      'stubborn',
      `process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)`,
    )
    const lines: string[] = []
    const sup = createSupervisor([{ name: 's', script: stubborn, killTimeoutMs: 200 }], {
      cwd: dir,
      env: {},
      logDir: dir,
      print: (l) => lines.push(l),
    })
    sup.start()
    await until(() => lines.some((l) => l.includes('up')))
    await sup.stop()
    expect(lines.some((l) => l.includes('did not stop within 200 ms'))).toBe(true)
    expect(sup.running()).toBe(0)
  })
})

describe('prettyLine', () => {
  it('turns a pino line into a short readable one', () => {
    const line = JSON.stringify({
      level: 40,
      time: '2026-01-01T12:00:01.234Z',
      pid: 1,
      name: 'indexer:consumer',
      msg: 'slow batch',
      ms: 900,
    })
    expect(prettyLine('indexer-0', line)).toBe(
      '12:00:01.234 indexer-0 WARN  indexer:consumer: slow batch {"ms":900}',
    )
    expect(prettyLine('x', 'plain text')).toMatch(/^\d\d:\d\d:\d\d\.\d{3} x plain text$/)
    const err = {
      message: 'getaddrinfo ENOTFOUND',
      stack: 'Error: getaddrinfo ENOTFOUND\n    at x',
    }
    const at = '2026-01-01T12:00:01.234Z'
    expect(prettyLine('f', JSON.stringify({ level: 40, time: at, msg: 'relay failed', err }))).toBe(
      '12:00:01.234 f WARN  relay failed (getaddrinfo ENOTFOUND)',
    )
    expect(prettyLine('f', JSON.stringify({ level: 50, time: at, msg: 'boom', err }))).toBe(
      '12:00:01.234 f ERROR boom\n    Error: getaddrinfo ENOTFOUND\n    at x',
    )
  })
})
