import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { decodeEvents, type StreamEvent } from '@circles/core'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import {
  ActivitySimulator,
  type ExpectedEvent,
  type LocalPds,
  startLocalPds,
} from '@circles/testkit/pds'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// The built service, run exactly as in production: `pnpm test` builds before vitest runs.
const MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/src/main.js')

interface Child {
  proc: ChildProcess
  output: string[]
}

function startService(pds: LocalPds, tr: TestRedis): Child {
  const output: string[] = []
  const proc = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      RELAY_URL: pds.firehoseUrl,
      REDIS_URL: tr.url,
      REDIS_PREFIX: tr.prefix,
      // From the PDS's first event: the accounts' creation is part of the record.
      FIREHOSE_CURSOR: '0',
      FIREHOSE_FLUSH_MS: '20',
      FIREHOSE_BACKOFF_MIN_MS: '50',
      FIREHOSE_BACKOFF_MAX_MS: '500',
      FIREHOSE_METRICS_MS: '1000',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  proc.stdout?.on('data', (d: Buffer) => output.push(d.toString()))
  proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()))
  return { proc, output }
}

async function stop(child: Child, signal: NodeJS.Signals): Promise<number | null> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return child.proc.exitCode
  const exited = once(child.proc, 'exit')
  child.proc.kill(signal)
  const [code] = (await exited) as [number | null]
  return code
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

function keyOf(e: ExpectedEvent | StreamEvent): string | null {
  switch (e.type) {
    case 'create':
      return `create ${e.kind} ${e.author} -> ${e.subject} ${e.rkey}`
    case 'delete':
      return `delete ${e.record} ${e.author} ${e.rkey}`
    case 'identity':
      return `identity ${e.did} ${e.handle}`
    case 'account':
      return `account ${e.did} ${e.active} ${e.status}`
    default:
      return null
  }
}

describe('firehose service against a real local PDS', () => {
  let pds: LocalPds
  let tr: TestRedis
  const children: Child[] = []

  beforeAll(async () => {
    pds = await startLocalPds()
    tr = await createTestRedis('e2e-firehose')
  })

  afterAll(async () => {
    for (const c of children) await stop(c, 'SIGKILL')
    await pds?.close()
    await tr?.cleanup()
  })

  it('publishes every interaction exactly once across kill -9 and restarts', async () => {
    const { redis, schema } = tr
    const cursor = async () => Number((await redis.get(schema.firehoseCursor)) ?? 0)
    const sim = await ActivitySimulator.create(pds, 4)

    let svc = startService(pds, tr)
    children.push(svc)
    await sim.round()
    const afterRound1 = await pds.lastSeq()
    await waitFor('the first round to be published', async () => (await cursor()) >= afterRound1)

    // Kill -9 while the second round is being written and published: the moment the cursor moves.
    const round2 = sim.round()
    const before = await cursor()
    await waitFor('the cursor to move during round 2', async () => (await cursor()) > before)
    await stop(svc, 'SIGKILL')
    await round2
    // More activity while the service is down: a handle change (#identity), an account deactivated
    // and reactivated (#account).
    await sim.changeHandle(1, `renamed${Date.now() % 1_000_000}.test`)
    await sim.deactivateAndReactivate(2)
    await sim.round()

    // Restart: it resumes from the stored cursor, catches up, and is killed again mid catch-up.
    svc = startService(pds, tr)
    children.push(svc)
    const beforeCatchUp = await cursor()
    await waitFor('the catch-up to start', async () => (await cursor()) > beforeCatchUp)
    await stop(svc, 'SIGKILL')

    svc = startService(pds, tr)
    children.push(svc)
    await sim.round()
    const last = await pds.lastSeq()
    await waitFor('the cursor to reach the last seq', async () => (await cursor()) >= last)
    expect(await stop(svc, 'SIGTERM'), svc.output.join('')).toBe(0)
    expect(await cursor()).toBe(last)

    const entries = await redis.xrange(schema.eventStream, '-', '+')
    const events: StreamEvent[] = []
    for (const [, fields] of entries) {
      const i = fields.indexOf('e')
      expect(i, 'every entry has the field e').toBeGreaterThanOrEqual(0)
      events.push(...decodeEvents(fields[i + 1] as string))
    }

    const counts = new Map<string, number>()
    for (const e of events) {
      const k = keyOf(e)
      if (k) counts.set(k, (counts.get(k) ?? 0) + 1)
    }
    const expected = sim.expected
    expect(expected.length).toBeGreaterThan(50)
    const kinds = new Set(expected.map((e) => (e.type === 'create' ? e.kind : e.type)))
    expect([...kinds].sort()).toEqual([
      'account',
      'delete',
      'identity',
      'like',
      'quote',
      'reply',
      'repost',
    ])

    const missing = expected.map(keyOf).filter((k) => !counts.has(k as string))
    expect(missing, 'expected events missing from the stream').toEqual([])
    const isInteraction = (k: string) => k.startsWith('create') || k.startsWith('delete')
    const repeated = [...counts].filter(([k, n]) => n > 1 && isInteraction(k))
    expect(repeated, 'interactions published more than once').toEqual([])
    // Nothing else: every interaction in the stream is one the simulator performed.
    const wanted = new Set(expected.map(keyOf))
    const unexpected = [...counts.keys()].filter((k) => isInteraction(k) && !wanted.has(k))
    expect(unexpected, 'interactions nobody performed').toEqual([])
  }, 110_000)
})
