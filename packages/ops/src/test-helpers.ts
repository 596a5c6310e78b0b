export { freePort } from '@circles/redis-server'

import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `circles-ops-${label}-`))
}
