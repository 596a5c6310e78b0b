import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startRedisServer } from '@circles/testkit'
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
    })
  })

  it('runs the API with the ecosystem file’s node flags', () => {
    expect(compose.services.fart?.command).toEqual([
      'node',
      ...apiFlags,
      'services/fart/dist/src/main.js',
    ])
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
