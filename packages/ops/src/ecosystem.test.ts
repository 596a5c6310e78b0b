import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadEcosystemApps } from './ecosystem.js'
import { readEnvFile } from './env-file.js'
import { repoRoot } from './paths.js'

describe('ecosystem.config.cjs', () => {
  it('lists the four services, producer first, with several indexers and graceful kill timeouts', () => {
    const root = repoRoot()
    const apps = loadEcosystemApps(root)
    expect(apps.map((a) => a.name)).toEqual(['firehose', 'indexer', 'scheduler', 'fart'])
    for (const app of apps) {
      expect(app.script).toBe(join(root, 'services', app.name, 'dist/src/main.js'))
      expect(app.killTimeoutMs).toBeGreaterThanOrEqual(10_000)
    }
    const indexer = apps.find((a) => a.name === 'indexer')
    const set = process.env.INDEXER_INSTANCES ?? readEnvFile(join(root, '.env')).INDEXER_INSTANCES
    expect(indexer?.instances).toBe(Number(set ?? 1))
    // pnpm start runs the API with the GC flags PM2 gives it; .env is read by pnpm start, not --env-file
    const fart = apps.find((a) => a.name === 'fart')
    expect(fart?.nodeArgs).toEqual(['--single-threaded-gc', '--max-semi-space-size=2'])
    expect(apps.flatMap((a) => a.nodeArgs ?? []).filter((f) => f.startsWith('--env-file'))).toEqual(
      [],
    )
  })
})
