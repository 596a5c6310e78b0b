// Built to packages/ops/dist/src/paths.js (and run from src/ by vitest): the repo root is found by walking
// up to the folder holding ecosystem.config.cjs, so the commands work from any working directory.
import { existsSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    if (existsSync(resolve(dir, 'pnpm-workspace.yaml'))) return dir
    dir = dirname(dir)
  }
  throw new Error('cannot find the repository root (pnpm-workspace.yaml) above packages/ops')
}
