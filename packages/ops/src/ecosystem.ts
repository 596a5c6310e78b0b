import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import type { AppSpec } from './supervisor.js'

// ecosystem.config.cjs is the one list of processes: PM2 runs it as daemons, `pnpm start` runs the same apps
// in the foreground through the supervisor, so the two cannot drift apart.

interface Pm2App {
  name: string
  script: string
  instances?: number | string
  kill_timeout?: number
  node_args?: string | string[]
  env?: Record<string, string | number | boolean>
  stop_exit_codes?: number[]
}

export function loadEcosystemApps(root: string): AppSpec[] {
  const require = createRequire(import.meta.url)
  const file = resolve(root, 'ecosystem.config.cjs')
  const config = require(file) as { apps?: Pm2App[] }
  if (!Array.isArray(config.apps)) throw new Error(`${file} has no apps list`)
  return config.apps.map((app) => ({
    name: app.name,
    script: resolve(root, app.script),
    instances: Math.max(1, Number(app.instances ?? 1) || 1),
    killTimeoutMs: app.kill_timeout,
    nodeArgs: nodeArgsOf(app),
    env: Object.fromEntries(Object.entries(app.env ?? {}).map(([k, v]) => [k, String(v)])),
    stopExitCodes: app.stop_exit_codes,
  }))
}

/**
 * The app's Node flags (the API's GC settings), so `pnpm start` runs each service as PM2 does. Not
 * `--env-file`: `pnpm start` and `pnpm demo` read `.env` themselves and give each service its environment.
 */
function nodeArgsOf(app: Pm2App): string[] {
  const args =
    typeof app.node_args === 'string' ? app.node_args.split(/\s+/) : (app.node_args ?? [])
  return args.filter((a) => a !== '' && !a.startsWith('--env-file'))
}
