import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REQUIRED_REDIS_SETTINGS } from '@circles/interaction-index'
import { freePort, pollUntil, startRedisServer } from '@circles/testkit'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { loadEcosystemApps } from '../src/ecosystem.js'
import { repoRoot } from '../src/paths.js'

// No image is built on these machines (no Docker daemon, no registry to pull a base image from), so the
// Dockerfile and docker-compose.yml are checked here by parsing them, and the parts that can run outside a
// container are run: the Redis healthcheck's command against a Redis and a Redis that is still loading,
// and the doctor as the image runs it.

const run = promisify(execFile)
const ROOT = repoRoot()
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>
}
const dockerfile = instructions(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))

interface ComposeService {
  image?: string
  command?: string[]
  ports?: string[]
  profiles?: string[]
  environment?: Record<string, string>
  depends_on?: Record<string, { condition: string; required?: boolean }>
  healthcheck?: { test: string[]; start_period?: string }
}

/** The Dockerfile's instructions, continuation lines joined and comments dropped: [keyword, rest]. */
function instructions(text: string): [string, string][] {
  const joined = text.replace(/\\\n(\s*#.*\n)*/g, ' ')
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [word, ...rest] = l.split(/\s+/)
      return [(word as string).toUpperCase(), rest.join(' ')]
    })
}

/** The instructions of one stage (`FROM ... AS name`). */
function stage(name: string): [string, string][] {
  const start = dockerfile.findIndex(([k, r]) => k === 'FROM' && r.endsWith(` AS ${name}`))
  expect(start, `stage ${name}`).toBeGreaterThanOrEqual(0)
  const end = dockerfile.findIndex(([k], i) => i > start && k === 'FROM')
  return dockerfile.slice(start, end < 0 ? undefined : end)
}

/** `127.0.0.1:${VAR:-port}:port`: on loopback, at the port VAR names (compose reads the shell and .env). */
function published(variable: string, port: number): string {
  return `127.0.0.1:\${${variable}:-${port}}:${port}`
}

const apiFlags = loadEcosystemApps(ROOT).find((a) => a.name === 'fart')?.nodeArgs ?? []

describe('the Dockerfile', () => {
  it('pins its Node base to a full version', () => {
    const arg = dockerfile.find(([k, r]) => k === 'ARG' && r.startsWith('NODE_VERSION='))
    expect(arg?.[1]).toMatch(/^NODE_VERSION=\d+\.\d+\.\d+$/)
    for (const [k, r] of dockerfile.filter(([k]) => k === 'FROM')) {
      expect(`${k} ${r}`).toMatch(/^FROM (node:\$\{NODE_VERSION\}-[a-z-]+|base|build) AS \w+$/)
    }
  })

  it('installs the font the PNG renderer asks for in the image that runs', () => {
    const runtime = stage('runtime')
      .filter(([k]) => k === 'RUN')
      .map(([, r]) => r)
    expect(runtime.some((r) => /apt-get install .*\bfonts-dejavu-core\b/.test(r))).toBe(true)
    // fonts-dejavu-core holds DejaVu Sans (and Bold): the family render.ts names for resvg.
    const render = readFileSync(join(ROOT, 'services/fart/src/render.ts'), 'utf8')
    expect(render).toMatch(/defaultFontFamily: 'DejaVu Sans'/)
    expect(render).toMatch(/loadSystemFonts: true/)
  })

  it('keeps the doctor and runs the API with the ecosystem file’s node flags', () => {
    const build = stage('build').map(([k, r]) => `${k} ${r}`)
    expect(build.some((l) => /tsc --build .*packages\/ops/.test(l))).toBe(true)
    expect(build.some((l) => /--filter-prod "\{\.\/packages\/ops\}\.\.\."/.test(l))).toBe(true)
    expect(build.some((l) => /rm -rf[^&]*packages\/ops\b/.test(l))).toBe(false)
    const cmd = stage('runtime').find(([k]) => k === 'CMD')?.[1] as string
    expect(JSON.parse(cmd)).toEqual(['node', ...apiFlags, 'services/fart/dist/src/main.js'])
    expect(apiFlags.length).toBeGreaterThan(0)
  })
})

describe('docker-compose.yml', () => {
  it('pins every image tag to a full version', () => {
    const images = Object.values(compose.services).flatMap((s) => s.image ?? [])
    expect(images).toContain('bsky-circles:local')
    for (const image of images.filter((i) => i !== 'bsky-circles:local')) {
      expect(image).toMatch(/:v?\d+\.\d+\.\d+(-[a-z0-9]+)?$/)
    }
  })

  it('publishes every port on loopback, the host port configurable', () => {
    const ports = Object.fromEntries(
      Object.entries(compose.services)
        .filter(([, s]) => s.ports)
        .map(([name, s]) => [name, s.ports]),
    )
    expect(ports).toEqual({
      redis: [published('REDIS_PORT', 6379)],
      redisinsight: [published('REDISINSIGHT_PORT', 5540)],
      fart: [published('PORT', 8080)],
      prometheus: [published('PROMETHEUS_PORT', 9090)],
      grafana: [published('GRAFANA_PORT', 3000)],
      // the cluster's nodes: fixed, each on the port it announces (checked below)
      ...Object.fromEntries(
        [1, 2, 3, 4, 5, 6].map((i) => [`redis-node-${i}`, [`127.0.0.1:700${i}:700${i}`]]),
      ),
    })
  })

  it('runs the API with the ecosystem file’s node flags', () => {
    expect(compose.services.fart?.command).toEqual([
      'node',
      ...apiFlags,
      'services/fart/dist/src/main.js',
    ])
  })

  it('starts the single Redis with AOF and the layout’s settings', () => {
    const line = (compose.services.redis?.command ?? []).join(' ')
    expect(line).toContain('--appendonly yes')
    expect(line).toContain('--maxmemory-policy noeviction')
    for (const [setting, wanted] of Object.entries(REQUIRED_REDIS_SETTINGS)) {
      expect(line, setting).toContain(`--${setting} ${wanted}`)
    }
  })

  it('calls Redis healthy only once its data is loaded', async () => {
    const test = compose.services.redis?.healthcheck?.test as string[]
    expect(test[0]).toBe('CMD-SHELL')
    const script = test[1] as string
    expect(script).toMatch(/loading:0/)
    // The command as the container runs it, redis-cli pointed at a port of ours (a function: bash).
    // (Not spawnSync: the loading Redis below answers from this process's event loop.)
    const check = (port: number) =>
      run('bash', ['-c', `redis-cli() { command redis-cli -p ${port} "$@"; }; ${script}`], {
        timeout: 10_000,
      }).then(
        () => 0,
        (err: { code?: number }) => err.code ?? -1,
      )
    const redis = await startRedisServer()
    try {
      expect(await check(redis.port), 'a loaded Redis').toBe(0)
    } finally {
      await redis.stop()
    }
    expect(await check(redis.port), 'no Redis').not.toBe(0)
    // A Redis still loading its AOF answers INFO with loading:1 (and PING with -LOADING).
    const loading = createServer((socket) => {
      socket.on('data', (d) => {
        const body = /INFO/i.test(d.toString())
          ? '# Persistence\r\nloading:1\r\nasync_loading:0\r\n'
          : null
        socket.write(
          body ? `$${body.length}\r\n${body}\r\n` : '-LOADING Redis is loading the dataset\r\n',
        )
      })
    })
    await new Promise<void>((r) => loading.listen(0, '127.0.0.1', r))
    try {
      const port = (loading.address() as { port: number }).port
      expect(await check(port), 'a loading Redis').not.toBe(0)
    } finally {
      loading.close()
    }
  })
})

/** A compose string as the container gets it: `$$` is compose's escape of a `$` left to the shell. */
function unescaped(text: string): string {
  return text.replaceAll('$$', '$')
}

describe('docker-compose.yml, profile cluster', () => {
  const services = Object.entries(compose.services)
  const nodes = services.filter(([name]) => name.startsWith('redis-node-'))
  const init = compose.services['redis-cluster-init'] as ComposeService
  /** `name:port` of each node service, as it announces itself. */
  const addresses = nodes.map(([, s]) => `${s.environment?.NODE_NAME}:${s.environment?.NODE_PORT}`)

  it('has six cluster nodes, with AOF, the layout’s settings, each announcing its own name and port', () => {
    expect(nodes.map(([name]) => name)).toEqual([1, 2, 3, 4, 5, 6].map((i) => `redis-node-${i}`))
    for (const [name, s] of nodes) {
      expect(s.profiles).toEqual(['cluster'])
      const port = s.environment?.NODE_PORT
      expect(s.environment?.NODE_NAME).toBe(name)
      // loopback only, published on the port it listens on and announces (clients follow CLUSTER SLOTS)
      expect(s.ports).toEqual([`127.0.0.1:${port}:${port}`])
      const line = unescaped((s.command ?? []).join(' '))
      for (const flag of [
        '--port "$NODE_PORT"',
        '--cluster-enabled yes',
        '--cluster-announce-hostname "$NODE_NAME"',
        '--cluster-preferred-endpoint-type hostname',
        '--appendonly yes',
        '--maxmemory-policy noeviction',
      ]) {
        expect(line, name).toContain(flag)
      }
      for (const [setting, wanted] of Object.entries(REQUIRED_REDIS_SETTINGS)) {
        expect(line, `${name} ${setting}`).toContain(`--${setting} ${wanted}`)
      }
      expect(unescaped(s.healthcheck?.test.join(' ') ?? '')).toMatch(/-p "\$NODE_PORT".*loading:0/)
    }
    expect(new Set(addresses).size).toBe(6)
  })

  it('starts a node from its command and calls it healthy by its healthcheck', async () => {
    const [, node] = nodes[0] as [string, ComposeService]
    const script = unescaped((node.command ?? [])[2] as string)
    const health = unescaped(node.healthcheck?.test[1] as string)
    // the image's entrypoint, which here has nothing to change user to: runs what it is given
    const dir = mkdtempSync(join(tmpdir(), 'compose-node-'))
    writeFileSync(join(dir, 'docker-entrypoint.sh'), '#!/bin/sh\nexec "$@"\n', { mode: 0o755 })
    const port = await freePort()
    const env = {
      ...process.env,
      PATH: `${dir}:${process.env.PATH}`,
      NODE_PORT: String(port),
      NODE_NAME: 'localhost',
    }
    const server = spawn('sh', ['-c', script], { cwd: dir, env, stdio: 'ignore' })
    const check = () =>
      run('sh', ['-c', health], { env, timeout: 5000 }).then(
        () => 0,
        () => 1,
      )
    try {
      expect(await pollUntil(check, (code) => code === 0, { timeoutMs: 10_000 })).toBe(0)
      const get = async (name: string) =>
        (await run('redis-cli', ['-p', String(port), 'config', 'get', name])).stdout.split('\n')[1]
      expect(await get('cluster-enabled')).toBe('yes')
      expect(await get('cluster-announce-hostname')).toBe('localhost')
      expect(await get('appendonly')).toBe('yes')
      expect(await get('set-max-intset-entries')).toBe('8192')
    } finally {
      server.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('makes the cluster once, from every node, with a replica per primary, after all are healthy', () => {
    expect(init.profiles).toEqual(['cluster'])
    const script = (init.command ?? []).join(' ')
    const create =
      /redis-cli --cluster create ((?:\S+:\d+ )+)--cluster-replicas 1 --cluster-yes/.exec(
        script.replace(/\s+/g, ' '),
      )
    expect(create, script).not.toBeNull()
    expect((create?.[1] ?? '').trim().split(' ').sort()).toEqual([...addresses].sort())
    // a cluster already made (volumes kept) is not made again
    expect(script).toMatch(/cluster info \| grep -q '\^cluster_state:ok' \|\|/)
    expect(init.depends_on).toEqual(
      Object.fromEntries(nodes.map(([name]) => [name, { condition: 'service_healthy' }])),
    )
  })

  it('gives every app service REDIS_CLUSTER_NODES naming the nodes, only when REDIS_CLUSTER is set', () => {
    const apps = services.filter(([, s]) => s.image === 'bsky-circles:local')
    expect(apps.map(([name]) => name).sort()).toEqual(['fart', 'firehose', 'indexer', 'scheduler'])
    for (const [name, s] of apps) {
      const value = /^\$\{REDIS_CLUSTER:\+([^}]+)\}$/.exec(s.environment?.REDIS_CLUSTER_NODES ?? '')
      expect(value, `${name} REDIS_CLUSTER_NODES`).not.toBeNull()
      expect((value?.[1] ?? '').split(',')).toEqual(addresses)
      expect(s.depends_on?.['redis-cluster-init'], name).toEqual({
        condition: 'service_completed_successfully',
        required: false,
      })
    }
  })
})

describe('the doctor as the image runs it', () => {
  it('runs as `node packages/ops/dist/src/doctor-cli.js` without scripts/ or pnpm', async () => {
    const redis = await startRedisServer()
    try {
      const out = await run(
        process.execPath,
        [join(ROOT, 'packages/ops/dist/src/doctor-cli.js'), '--skip-relay'],
        { cwd: '/', env: { ...process.env, REDIS_URL: redis.url, REDIS_PREFIX: 'imagedoc:' } },
      ).catch((err: { stdout: string }) => err)
      expect(out.stdout).toMatch(/bsky-circles doctor: Redis redis:\/\/127\.0\.0\.1/)
      expect(out.stdout).toMatch(/redis maxmemory-policy/)
    } finally {
      await redis.stop()
    }
  })
})
