import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Part, SKIP_LOG } from './parts.js'

/**
 * vitest global setup: gives the run a file where `needPart` logs skips, and at the end prints each
 * skipped part once with the command that installs it, so a local run that reads green says what it left.
 */
export default function skipReportSetup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'circles-skips-'))
  const log = join(dir, 'skips.jsonl')
  process.env[SKIP_LOG] = log
  return () => {
    const lines = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []
    rmSync(dir, { recursive: true, force: true })
    const parts = new Map<string, Part>()
    for (const line of lines) {
      const part = JSON.parse(line) as Part
      parts.set(`${part.what}\n${part.tests}`, part)
    }
    if (parts.size === 0) return
    const text = [...parts.values()]
      .map((p) => `  ${p.tests}: no ${p.what}\n    install: ${p.install}\n`)
      .join('')
    process.stdout.write(`\nSkipped for a missing part (CI=true fails instead):\n${text}`)
  }
}
