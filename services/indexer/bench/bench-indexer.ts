// pnpm bench:indexer: >= 1,000,000 Zipf interactions through the stream and the real indexer service (a
// child process) into a private redis-server; then the same interactions in the original layout as the
// baseline. Progress lines first, one JSON line last.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HOUR_MS, type InteractionKind, type StreamEvent } from '@circles/core'
import { createIndexReader, ensureRedisSettings } from '@circles/interaction-index'
import { createSchema } from '@circles/redis-schema'
import { startRedisServer } from '@circles/testkit'
import { Redis } from 'ioredis'
import {
  childrenCpu,
  EVENTS_PER_ENTRY,
  generate,
  loadStream,
  N,
  POPULATION,
  PREFIX,
  progressFor,
  redisCpu,
  spawnIndexers,
  stopChild,
  usedMemory,
  waitDrained,
  ZIPF_S,
} from './indexer-load.js'

const READ_ITERATIONS = Number(process.env.BENCH_READS ?? 200)
/** Indexer processes consuming the stream together (one per core: Redis has the other). */
const INDEXERS = Number(process.env.BENCH_INDEXERS ?? 1)
const READS = resolve(dirname(fileURLToPath(import.meta.url)), 'bench-reads.js')
const progress = progressFor('bench-indexer')

function p99(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)] as number
}

/** The original design (FIELD-NOTES 5, first row), loaded directly, deletes applied. */
async function loadBaseline(redis: Redis, events: StreamEvent[], nowMs: number): Promise<void> {
  const ttl = 48 * 3600
  const known = new Map<string, { subject: string; kinds: InteractionKind[]; time: number }>()
  let pipe = redis.pipeline()
  let n = 0
  const collection = (k: InteractionKind) =>
    k === 'like'
      ? 'app.bsky.feed.like'
      : k === 'repost'
        ? 'app.bsky.feed.repost'
        : 'app.bsky.feed.post'
  for (const e of events) {
    if (e.type === 'create') {
      const uri = `at://${e.author}/${collection(e.kind)}/${e.rkey}`
      const h = Math.floor(e.time / HOUR_MS)
      const key = `interaction:${uri}${e.kind === 'quote' ? '#quote' : ''}`
      const doc = {
        uri,
        author: e.author,
        subject: e.subject,
        type: e.kind,
        createdAt: new Date(e.time).toISOString(),
        indexedAt: new Date(nowMs).toISOString(),
        textLength: e.chars,
      }
      pipe.set(key, JSON.stringify(doc), 'EX', ttl)
      pipe.zadd(`user:${e.author}:sent:${e.kind}`, e.time, uri)
      pipe.expire(`user:${e.author}:sent:${e.kind}`, ttl)
      const hk = `hourly:${h}:${e.kind}:${e.author}:${e.subject}`
      pipe.incr(hk)
      pipe.expire(hk, ttl)
      const k = `${e.author}/${e.rkey}`
      const prev = known.get(k)
      if (prev) prev.kinds.push(e.kind)
      else known.set(k, { subject: e.subject, kinds: [e.kind], time: e.time })
    } else if (e.type === 'delete') {
      const rec = known.get(`${e.author}/${e.rkey}`)
      if (rec) {
        for (const kind of rec.kinds) {
          const uri = `at://${e.author}/${collection(kind)}/${e.rkey}`
          pipe.del(`interaction:${uri}${kind === 'quote' ? '#quote' : ''}`)
          pipe.zrem(`user:${e.author}:sent:${kind}`, uri)
          pipe.decr(`hourly:${Math.floor(rec.time / HOUR_MS)}:${kind}:${e.author}:${rec.subject}`)
        }
        known.delete(`${e.author}/${e.rkey}`)
      }
    }
    if (++n % 5000 === 0) {
      await pipe.exec()
      pipe = redis.pipeline()
    }
    if (n % 200_000 === 0) progress(`baseline: ${n}/${events.length} events`)
  }
  await pipe.exec()
}

async function main(): Promise<void> {
  const nowMs = Date.now()
  progress(`generating ${N} interactions: population ${POPULATION}, Zipf s=${ZIPF_S}`)
  const gen = generate(nowMs)
  const live = gen.creates - gen.deleted
  const heavyAuthor = gen.dids[gen.authorRank[0] as number] as string
  const counts = [...gen.authorCounts.entries()].sort((a, b) => b[1] - a[1])
  const medianAuthor = (counts[Math.floor(counts.length / 2)] as [string, number])[0]
  progress(
    `${gen.events.length} events (${gen.creates} creates, ${gen.deleted} deleted later); heaviest author ` +
      `${gen.authorCounts.get(heavyAuthor)} interactions, median author ${gen.authorCounts.get(medianAuthor)}, ` +
      `${counts.length} distinct authors`,
  )

  const server = await startRedisServer()
  const redis = new Redis(server.url, { maxRetriesPerRequest: null })
  const schema = createSchema(PREFIX)
  const children: ChildProcess[] = []
  try {
    const settings = await ensureRedisSettings(redis)
    progress(`redis ${server.url}; settings raised: ${JSON.stringify(settings.changed)}`)
    const m0 = await usedMemory([redis])
    const entries = await loadStream(redis, schema.eventStream, gen.events)
    progress(`stream loaded: ${entries} entries of ${EVENTS_PER_ENTRY} events`)

    const t0 = Date.now()
    children.push(...spawnIndexers(INDEXERS, { REDIS_URL: server.url }))
    await redis.config('RESETSTAT')
    const cpu0 = await redisCpu([redis])
    await waitDrained(redis, schema.eventStream, schema.indexerGroup, entries, t0, progress)
    const seconds = (Date.now() - t0) / 1000
    // CPU per interaction, which the machine's other load inflates much less than wall time does
    const redisUs = (((await redisCpu([redis])) - cpu0) * 1e6) / gen.creates
    const nodeUs = (childrenCpu(children) * 1e6) / gen.creates
    progress(
      `CPU per interaction: redis ${redisUs.toFixed(1)} us, indexer ${nodeUs.toFixed(1)} us ` +
        `(CPU-bound capacity ~${Math.round(1e6 / Math.max(redisUs, nodeUs))}/s with a core each)`,
    )
    // where Redis's time goes: script calls, and the commands the scripts run (counted inside them)
    const stats = await redis.info('commandstats')
    const perCall: string[] = []
    for (const m of stats.matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g)) {
      const [, name, calls, usec] = m
      if (Number(calls) >= 1000) {
        perCall.push(
          `${name} ${(Number(calls) / gen.creates).toFixed(3)}/interaction ${(Number(usec) / Number(calls)).toFixed(1)} us`,
        )
      }
    }
    progress(`redis commands: ${perCall.join(', ')}`)
    const rate = gen.creates / seconds
    progress(
      `indexed ${gen.creates} interactions in ${seconds.toFixed(1)} s by ${INDEXERS} process(es): ${rate.toFixed(0)}/s`,
    )
    await Promise.all(children.map(stopChild))

    await redis.del(schema.eventStream, schema.indexerMetrics)
    const m1 = await usedMemory([redis])
    const bytes = (m1 - m0) / live
    const keys = await redis.dbsize()
    progress(
      `index memory ${(m1 - m0) / 1e6} MB in ${keys} keys for ${live} live interactions: ${bytes.toFixed(1)} B each`,
    )

    // Reads run in a child process of their own (bench-reads.ts), as in the API: timed in this process they
    // measured this process's GC (a 190 ms mark-compact of the ~200 MB of generated events, 2026-11-22).
    type Samples = Record<string, number[]>
    async function timeTops(warm: string[], dids: string[]) {
      const child = spawn(
        process.execPath,
        [READS, server.url, PREFIX, String(READ_ITERATIONS), warm.join(','), ...dids],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      )
      let text = ''
      child.stdout?.on('data', (chunk: Buffer) => {
        text += chunk.toString()
      })
      const [code] = (await once(child, 'exit')) as [number | null]
      if (code !== 0) throw new Error(`bench-reads exited with ${code}`)
      return JSON.parse(text) as { blocks: Samples; mixed: Samples }
    }
    function spread(label: string, samples: number[] = []): number {
      // the p99 of 200 is the third-worst call: show the spread so a GC pause or a busy machine stands out
      const sorted = [...samples].sort((a, b) => a - b)
      const at = (q: number) => (sorted[Math.floor(q * (sorted.length - 1))] as number).toFixed(2)
      progress(
        `top-50 ${label}: p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`,
      )
      return p99(samples)
    }
    const check = await createIndexReader(redis, schema).summary(heavyAuthor, 48)
    progress(`heaviest author summary: ${JSON.stringify(check)}`)
    // warm-up accounts: 64 authors spread over the ranks, neither of the timed ones
    const warm: string[] = []
    for (let i = 1; i <= 64; i++) {
      const did = (counts[Math.floor((i * (counts.length - 1)) / 65)] as [string, number])[0]
      if (did !== heavyAuthor && did !== medianAuthor) warm.push(did)
    }
    const times = await timeTops(warm, [medianAuthor, heavyAuthor])
    const median = spread(`median ${medianAuthor}`, times.blocks[medianAuthor])
    const heavy = spread(`heaviest ${heavyAuthor}`, times.blocks[heavyAuthor])
    progress(`top-50 p99: heaviest ${heavy.toFixed(2)} ms, median ${median.toFixed(2)} ms`)
    spread('median, each right after a heaviest read', times.mixed[medianAuthor])
    spread('heaviest, interleaved', times.mixed[heavyAuthor])

    // BENCH_BASELINE=0 skips the baseline (about a minute) while iterating on the indexer
    let baseline = Number.NaN
    if (process.env.BENCH_BASELINE !== '0') {
      await redis.flushall()
      const b0 = await usedMemory([redis])
      await loadBaseline(redis, gen.events, nowMs)
      baseline = ((await usedMemory([redis])) - b0) / live
    }
    progress(
      `baseline (original layout): ${((baseline * live) / 1e6).toFixed(1)} MB, ${baseline.toFixed(1)} B each`,
    )

    const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d
    process.stdout.write(
      `${JSON.stringify({
        bench: 'indexer',
        interactions: gen.creates,
        interactions_per_s: Math.round(rate),
        bytes_per_interaction: round(bytes),
        baseline_bytes_per_interaction: round(baseline),
        memory_ratio: round(baseline / bytes, 2),
        heavy_top50_p99_ms: round(heavy, 2),
        median_top50_p99_ms: round(median, 2),
      })}\n`,
    )
  } finally {
    await Promise.all(children.map((c) => stopChild(c).catch(() => {})))
    redis.disconnect()
    await server.stop()
  }
}

await main()
