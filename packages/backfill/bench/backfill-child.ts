// One measured run of pnpm bench:backfill, in a process of its own so that its peak RSS is its own:
// `node backfill-child.js baseline|ours <car> <did> <signing key>`; prints one JSON line. Ours folds into
// the Redis at REDIS_URL (default 127.0.0.1:6379), under a private prefix. The repo is done twice in the
// process: the first pass is the cold figure (a fresh process: JIT, lazy modules, curve tables), the
// second the warm one (a long-lived worker's next repo), each pass of ours under a prefix of its own.
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'

const [variant, car, did, signingKey] = process.argv.slice(2) as [string, string, string, string]
const WANTED = new Set(['app.bsky.feed.like', 'app.bsky.feed.repost', 'app.bsky.feed.post'])

async function baseline(): Promise<Pass> {
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

interface Pass {
  records: number
  ms: number
  readMs: number
  foldMs: number
}

async function ours(pass: number): Promise<Pass & Record<string, number>> {
  const { readRepo } = await import('@circles/repo-source')
  const { createIndexWriter } = await import('@circles/interaction-index')
  const { createSchema } = await import('@circles/redis-schema')
  const { Redis } = await import('ioredis')
  const { foldRepo } = await import('../src/fold.js')
  // The real fold into a real Redis, under a prefix of its own (deleted after the measurement).
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  const schema = createSchema(`bench-backfill:${process.pid}:${pass}:`)
  const writer = createIndexWriter(redis, schema)
  try {
    const start = performance.now()
    const repo = await readRepo(createReadStream(car), { did, signingKey })
    const read = performance.now()
    const fold = await foldRepo({ redis, schema, writer }, did, repo.interactions())
    const end = performance.now()
    return {
      records: fold.records,
      events: fold.liveEvents + fold.dayEvents,
      live: fold.liveEvents,
      partners: fold.day.partners,
      skipped: repo.skipped,
      ms: end - start,
      readMs: read - start,
      foldMs: end - read,
    }
  } finally {
    await writer.close()
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', schema.all, 'COUNT', 1000)
      if (keys.length > 0) await redis.unlink(...keys)
      cursor = next
    } while (cursor !== '0')
    redis.disconnect()
  }
}

const run = (pass: number) => (variant === 'baseline' ? baseline() : ours(pass))
const result = await run(0)
const warm = await run(1)
// maxRSS counts from the parent's size at spawn (Linux), which the bench keeps small; the kernel's
// high-water mark of this process alone is printed beside it as a check.
const peakRssMb = process.resourceUsage().maxRSS / 1024
const hwm = /VmHWM:\s+(\d+) kB/.exec(await readFile('/proc/self/status', 'utf8').catch(() => ''))
const hwmMb = hwm ? Number(hwm[1]) / 1024 : undefined
process.stdout.write(
  `${JSON.stringify({
    variant,
    ...result,
    warmMs: warm.ms,
    warmReadMs: warm.readMs,
    warmFoldMs: warm.foldMs,
    peakRssMb,
    hwmMb,
  })}\n`,
)
