// pnpm bench:rollup: one network-scale hour (5,000,000 interactions by default; same distribution as the
// indexer bench: two independent Zipf rankings over 100k accounts, s = 1, kinds 72/14/11/3 %) written with
// the indexer's writer into a private redis-server, then rolled up (scan + fold + marker + free) and timed.
// Baseline in the same run: the same rows folded into plain hashes (field = partner DID + kind, HINCRBY),
// the obvious layout. Progress lines first, one JSON line last.
import { HOUR_MS, type InteractionKind, type StreamEvent } from '@circles/core'
import {
  createIndexWriter,
  DID_TABLE_BUCKETS,
  didId,
  ensureRedisSettings,
  HOUR_AUTHOR_SHARDS,
} from '@circles/interaction-index'
import { createSchema, type RedisSchema } from '@circles/redis-schema'
import { startRedisServer } from '@circles/testkit'
import { createWorkloadRandom, tidFromMicros } from '@circles/testkit/workload'
import { Redis } from 'ioredis'
import { createRollupFence } from '../src/fence.js'
import { loadHour } from '../src/hour-table.js'
import { createLiveHours } from '../src/live-index.js'
import { acquireLock } from '../src/lock.js'
import { runRollup } from '../src/rollup.js'

const N = Number(process.env.BENCH_INTERACTIONS ?? 5_000_000)
const POPULATION = Number(process.env.BENCH_POPULATION ?? 100_000)
const ZIPF_S = Number(process.env.BENCH_ZIPF_S ?? 1)
const BASELINE = process.env.BENCH_BASELINE !== '0'
/** `direct` (default) writes the index layout in bulk; `writer` goes through the indexer's writer. */
const LOADER = process.env.BENCH_LOADER === 'writer' ? 'writer' : 'direct'
const BATCH = 5000
const IN_FLIGHT = 4
const PREFIX = 'circles:'

function progress(msg: string): void {
  process.stdout.write(`[bench-rollup] ${new Date().toISOString()} ${msg}\n`)
}

const { zipfSampler, shuffled, randomDid, pickKind } = createWorkloadRandom(42)

/** Sum of MEMORY USAGE over every key matching `pattern`, and the number of keys. */
async function memoryOf(redis: Redis, pattern: string): Promise<{ bytes: number; keys: number }> {
  let cursor = '0'
  let bytes = 0
  let keys = 0
  do {
    const [next, page] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000)
    cursor = next
    if (page.length === 0) continue
    const pipe = redis.pipeline()
    for (const k of page) pipe.memory('USAGE', k, 'SAMPLES', 0)
    for (const [err, n] of (await pipe.exec()) ?? []) if (!err) bytes += Number(n)
    keys += page.length
  } while (cursor !== '0')
  return { bytes, keys }
}

/** The generated hour, as parallel arrays (5M event objects would not fit comfortably). */
interface Generated {
  dids: string[]
  author: Int32Array
  subject: Int32Array
  kind: Uint8Array
  micros: Float64Array
}

const KINDS: readonly InteractionKind[] = ['like', 'repost', 'reply', 'quote']

function generate(hour: number): Generated {
  const dids = Array.from({ length: POPULATION }, randomDid)
  const authorRank = shuffled(POPULATION)
  const subjectRank = shuffled(POPULATION)
  const zipf = zipfSampler(POPULATION, ZIPF_S)
  const g: Generated = {
    dids,
    author: new Int32Array(N),
    subject: new Int32Array(N),
    kind: new Uint8Array(N),
    micros: new Float64Array(N),
  }
  const stepMicros = Math.floor((HOUR_MS * 1000) / N)
  for (let i = 0; i < N; i++) {
    const a = authorRank[zipf()] as number
    let b = subjectRank[zipf()] as number
    while (b === a) b = subjectRank[zipf()] as number
    g.author[i] = a
    g.subject[i] = b
    g.kind[i] = KINDS.indexOf(pickKind())
    g.micros[i] = hour * HOUR_MS * 1000 + i * stepMicros
  }
  return g
}

function eventOf(g: Generated, i: number): StreamEvent {
  const micros = g.micros[i] as number
  return {
    type: 'create',
    kind: KINDS[g.kind[i] as number] as InteractionKind,
    author: g.dids[g.author[i] as number] as string,
    subject: g.dids[g.subject[i] as number] as string,
    rkey: tidFromMicros(micros, i % 1024),
    time: Math.floor(micros / 1000),
    chars: 0,
  }
}

/** Through the indexer's writer (its Lua scripts), batches of events, a few in flight. */
async function loadWithWriter(
  redis: Redis,
  schema: RedisSchema,
  g: Generated,
  from: number,
  to: number,
  report: boolean,
): Promise<number> {
  const writer = createIndexWriter(redis, schema)
  const start = performance.now()
  let added = 0
  const inFlight = new Set<Promise<void>>()
  for (let first = from; first < to; first += BATCH) {
    const events: StreamEvent[] = []
    for (let i = first; i < Math.min(to, first + BATCH); i++) events.push(eventOf(g, i))
    const p = writer.apply(events).then((st) => {
      added += st.added
      inFlight.delete(p)
    })
    inFlight.add(p)
    if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight)
    const made = first + BATCH - from
    if (report && made % 250_000 === 0) {
      const sec = (performance.now() - start) / 1000
      progress(`loaded ${made} (${Math.round(made / sec)}/s)`)
    }
  }
  await Promise.all(inFlight)
  return added
}

// The direct loader writes the live index's documented layout (packages/interaction-index/src/layout.ts)
// in big pipelines: every record of the hour in the hour's per-account log, both directions, plus the DID
// table and the hour's author index. The writer's per-record duplicate search makes one heavy account's
// hour quadratic (a Zipf head has ~400k interactions in a 5M hour), so it cannot load this hour in useful
// time; `checkDirectLoader` first proves on a sample that both loaders give the reader the same hour.
const HEADER = 8
const RECORD = 23
const CODE_INBOUND = 4

function didTableBucket(id: Buffer): number {
  return id.readUInt16BE(0) % DID_TABLE_BUCKETS
}

async function loadDirect(
  redis: Redis,
  schema: RedisSchema,
  g: Generated,
  hour: number,
  from: number,
  to: number,
): Promise<number> {
  const ids = g.dids.map((d) => didId(d))
  const per = new Int32Array(g.dids.length)
  for (let i = from; i < to; i++) {
    per[g.author[i] as number] = (per[g.author[i] as number] as number) + 1
    per[g.subject[i] as number] = (per[g.subject[i] as number] as number) + 1
  }
  const logs = Array.from(per, (n) => (n > 0 ? Buffer.alloc(HEADER + n * RECORD) : null))
  const fill = new Int32Array(g.dids.length).fill(HEADER)
  const minSec = Math.floor((g.micros[from] as number) / 1e6)
  const put = (acct: number, partner: number, code: number, i: number) => {
    const log = logs[acct] as Buffer
    const o = fill[acct] as number
    log.writeUInt32LE(i >>> 0, o) // rkey bytes: unique per event; the scan does not read them
    log.writeUInt32LE(acct, o + 4)
    log[o + 8] = code
    ;(ids[partner] as Buffer).copy(log, o + 9)
    log.writeUInt32BE(Math.floor((g.micros[i] as number) / 1e6), o + 17)
    log.writeUInt16BE(0, o + 21)
    fill[acct] = o + RECORD
  }
  for (let i = from; i < to; i++) {
    const k = g.kind[i] as number
    put(g.author[i] as number, g.subject[i] as number, k, i)
    put(g.subject[i] as number, g.author[i] as number, k | CODE_INBOUND, i)
  }
  const expireAt = Math.floor(Date.now() / 1000) + 86_400
  let pipe = redis.pipeline()
  let bytes = 0
  const authors = new Uint8Array(g.dids.length)
  for (let i = from; i < to; i++) authors[g.author[i] as number] = 1
  for (let a = 0; a < g.dids.length; a++) {
    const log = logs[a]
    if (!log) continue
    log.writeUInt32BE(minSec, 0)
    const did = g.dids[a] as string
    const id = ids[a] as Buffer
    pipe.set(schema.accountHourLog(did, hour), log, 'EXAT', expireAt)
    pipe.hsetnx(
      schema.didTable(didTableBucket(id)),
      id,
      did.startsWith('did:plc:') ? did.slice(8) : did,
    )
    if (authors[a]) {
      pipe.sadd(
        schema.hourAuthors(hour, (id[7] as number) % HOUR_AUTHOR_SHARDS),
        id.readBigInt64BE(0).toString(),
      )
    }
    bytes += log.length
    if (bytes > 32 * 1024 * 1024 || pipe.length > 20_000) {
      await pipe.exec()
      pipe = redis.pipeline()
      bytes = 0
    }
  }
  pipe.sadd(schema.indexHours, hour)
  await pipe.exec()
  return to - from
}

/** The reader's view of an hour, as sorted lines. */
async function scanLines(redis: Redis, schema: RedisSchema, hour: number): Promise<string[]> {
  const out: string[] = []
  await createLiveHours(redis, schema).scanHour(hour, async (rows) => {
    for (const r of rows) out.push(`${r.author} ${r.subject} ${r.kind} ${r.count}`)
  })
  return out.sort()
}

async function checkDirectLoader(redis: Redis, g: Generated, hour: number): Promise<void> {
  const sample = Math.min(N, 30_000)
  const viaWriter = createSchema('check-writer:')
  const viaDirect = createSchema('check-direct:')
  await loadWithWriter(redis, viaWriter, g, 0, sample, false)
  await loadDirect(redis, viaDirect, g, hour, 0, sample)
  const [a, b] = [await scanLines(redis, viaWriter, hour), await scanLines(redis, viaDirect, hour)]
  if (a.length === 0 || a.join('\n') !== b.join('\n')) {
    throw new Error(`direct loader disagrees with the writer: ${a.length} vs ${b.length} rows`)
  }
  await redis.flushdb() // the private server only
  await ensureRedisSettings(redis)
  progress(
    `direct loader checked against the writer on ${sample} interactions: same ${a.length} rows`,
  )
}

async function main(): Promise<void> {
  const server = await startRedisServer()
  const redis = new Redis(server.url, { maxRetriesPerRequest: null })
  try {
    const settings = await ensureRedisSettings(redis)
    progress(
      `private redis-server at ${server.url}; settings raised: ${JSON.stringify(settings.changed)}`,
    )
    const schema = createSchema(PREFIX)
    // The hour: three hours ago, so the writer (clock = now) accepts it and its records do not expire.
    const hour = Math.floor(Date.now() / HOUR_MS) - 3
    const gen = generate(hour)
    progress(
      `generated ${N} interactions in hour ${hour} (${POPULATION} accounts, Zipf s=${ZIPF_S}); ` +
        `loader: ${LOADER}`,
    )
    const loadStart = performance.now()
    let added: number
    if (LOADER === 'writer') {
      added = await loadWithWriter(redis, schema, gen, 0, N, true)
    } else {
      await checkDirectLoader(redis, gen, hour)
      added = await loadDirect(redis, schema, gen, hour, 0, N)
    }
    const loadS = (performance.now() - loadStart) / 1000
    progress(`loaded ${N} in ${loadS.toFixed(1)} s, ${added} indexed`)

    let baseline: { writeS: number; bytesPerTuple: number } | null = null
    if (BASELINE) {
      // Baseline: the same hour's rows into plain hashes, one HINCRBY per (account, direction, day,
      // partner DID + kind). Scan first (not timed: both layouts need it), then time the writes.
      const { table } = await loadHour(createLiveHours(redis, schema), hour)
      const day = String(Math.floor(hour / 24))
      const start = performance.now()
      let pipe = redis.pipeline()
      for (let i = 0; i < table.n; i++) {
        const a = table.dids[table.author[i] as number] as string
        const s = table.dids[table.subject[i] as number] as string
        const k = String(table.kind[i])
        const c = table.count[i] as number
        pipe.hincrby(`naive:{${a}}:s:${day}`, `${s}|${k}`, c)
        pipe.hincrby(`naive:{${s}}:r:${day}`, `${a}|${k}`, c)
        if (pipe.length >= 20_000) {
          await pipe.exec()
          pipe = redis.pipeline()
        }
      }
      await pipe.exec()
      const writeS = (performance.now() - start) / 1000
      const mem = await memoryOf(redis, 'naive:*')
      baseline = { writeS, bytesPerTuple: mem.bytes / table.n }
      progress(
        `baseline: ${table.n} (pair, kind) rows written in ${writeS.toFixed(1)} s, ` +
          `${mem.keys} keys, ${baseline.bytesPerTuple.toFixed(1)} B per (pair, kind, day)`,
      )
      let cursor = '0'
      do {
        const [next, page] = await redis.scan(cursor, 'MATCH', 'naive:*', 'COUNT', 5000)
        cursor = next
        if (page.length > 0) await redis.unlink(...page)
      } while (cursor !== '0')
    }

    progress('rolling up')
    const start = performance.now()
    // As the job does: the lock and its fencing number, then the run (its writes claim the fence first).
    const lock = await acquireLock(
      redis,
      schema.schedulerLock('rollup'),
      60_000,
      schema.schedulerFenceCounter('rollup'),
    )
    if (!lock?.fence) throw new Error('could not take the roll-up lock')
    const res = await runRollup(redis, schema, createLiveHours(redis, schema), {
      now: (hour + 48) * HOUR_MS + 1,
      liveWindowHours: 48,
      retentionDays: 90,
      fence: createRollupFence(redis, schema, lock.fence),
    })
    const rollupS = (performance.now() - start) / 1000
    const rolled = res.rolled[0]
    if (!rolled || rolled.hour !== hour) throw new Error(`hour ${hour} was not rolled up`)
    const mem = await memoryOf(redis, schema.longTermPattern)
    const tuples = rolled.rows
    const bytesPerPairDay = mem.bytes / tuples
    progress(
      `rolled up ${rolled.rows} (pair, kind) rows (${rolled.records} records, ${rolled.created} day blobs) ` +
        `in ${rollupS.toFixed(1)} s (scan ${rolled.loadMs} ms, fold ${rolled.foldMs} ms); ` +
        `${mem.keys} keys, ${mem.bytes} B`,
    )
    const details = {
      loader: LOADER,
      pair_kind_rows: tuples,
      keys: mem.keys,
      load_s: Math.round(loadS * 10) / 10,
      ...(baseline
        ? {
            baseline_write_s: Math.round(baseline.writeS * 100) / 100,
            baseline_bytes_per_pair_day: Math.round(baseline.bytesPerTuple * 10) / 10,
            bytes_ratio_vs_baseline:
              Math.round((bytesPerPairDay / baseline.bytesPerTuple) * 1000) / 1000,
          }
        : {}),
    }
    progress(`details ${JSON.stringify(details)}`)
    const out = {
      bench: 'rollup',
      interactions: added,
      rollup_s: Math.round(rollupS * 100) / 100,
      bytes_per_pair_day: Math.round(bytesPerPairDay * 10) / 10,
    }
    process.stdout.write(`${JSON.stringify(out)}\n`)
  } finally {
    await redis.quit().catch(() => redis.disconnect())
    await server.stop()
  }
}

main().catch((err) => {
  process.stderr.write(`[bench-rollup] failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
