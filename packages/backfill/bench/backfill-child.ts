// One measured run of pnpm bench:backfill, in a process of its own so that its peak RSS is its own:
// `node backfill-child.js baseline|ours <car> <did> <signing key>`; prints one JSON line.
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'

const [variant, car, did, signingKey] = process.argv.slice(2) as [string, string, string, string]
const WANTED = new Set(['app.bsky.feed.like', 'app.bsky.feed.repost', 'app.bsky.feed.post'])

async function baseline(): Promise<object> {
  const { cborToLex, readCarWithRoot } = await import('@atproto/repo')
  const start = performance.now()
  // @atproto/repo's plain way: the whole CAR in memory, every block (hash-checked) into a BlockMap,
  // then every block decoded and the records of the wanted types counted.
  const { blocks } = await readCarWithRoot(await readFile(car))
  const read = performance.now()
  let records = 0
  for (const [, bytes] of blocks) {
    const value = cborToLex(bytes) as { $type?: unknown } | null
    if (typeof value?.$type === 'string' && WANTED.has(value.$type)) records++
  }
  const end = performance.now()
  return { records, ms: end - start, readMs: read - start, foldMs: end - read }
}

async function ours(): Promise<object> {
  const { readRepo } = await import('@circles/repo-source')
  const { foldRecords } = await import('./fold.js')
  const start = performance.now()
  const repo = await readRepo(createReadStream(car), { did, signingKey })
  const read = performance.now()
  const counts = foldRecords(did, repo.records())
  const end = performance.now()
  return {
    records: counts.records,
    events: counts.events,
    partners: counts.perPartner.size,
    rejected: counts.rejected,
    skipped: repo.skipped,
    ms: end - start,
    readMs: read - start,
    foldMs: end - read,
  }
}

const result = variant === 'baseline' ? await baseline() : await ours()
// maxRSS counts from the parent's size at spawn (Linux), which the bench keeps small; the kernel's
// high-water mark of this process alone is printed beside it as a check.
const peakRssMb = process.resourceUsage().maxRSS / 1024
const hwm = /VmHWM:\s+(\d+) kB/.exec(await readFile('/proc/self/status', 'utf8').catch(() => ''))
const hwmMb = hwm ? Number(hwm[1]) / 1024 : undefined
process.stdout.write(`${JSON.stringify({ variant, ...result, peakRssMb, hwmMb })}\n`)
