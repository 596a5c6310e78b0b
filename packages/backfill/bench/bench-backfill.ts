// pnpm bench:backfill: a repo of 100k records made with @atproto/repo (likes, reposts, posts with
// replies, quotes and images, follows; 90 days of history, partners among a few thousand accounts), its
// CAR in a temp file; then, each in a child process of its own (its own peak RSS), alternately:
// the baseline, @atproto/repo's readCarWithRoot + a decode loop over the blocks, and ours, readRepo
// (streaming, verified) over a file stream + the fold into Redis (`foldRepo`: the live index for the
// last 46 hours, the backfilled day blobs for the rest). Medians of the runs. Each child does the repo
// twice: `records_per_s` and the ratio are the first pass (cold, a fresh process), `warm_*` the second
// (a long-lived worker's next repo); the peak RSS covers both. Progress lines first, one JSON line last.
import { spawn } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000)
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 5))
/** A CAR older than this is made again: its records must stay inside the last 90 days. */
const CACHE_MS = 12 * 3_600_000

const here = dirname(fileURLToPath(import.meta.url))
const CHILD = resolve(here, 'backfill-child.js')
const MAKER = resolve(here, 'make-repo.js')

function progress(msg: string): void {
  // The load average says how much of the 2 cores this run really had (the machine may be shared).
  const load = loadavg()[0]?.toFixed(1)
  process.stdout.write(`[bench-backfill] ${new Date().toISOString()} load ${load} ${msg}\n`)
}

interface Made {
  did: string
  signingKey: string
  records: number
  madeAt: number
}

/** The repo's CAR and what a reader needs to verify it; made again when missing or stale. */
async function ensureCar(): Promise<{ car: string; made: Made }> {
  const car = join(tmpdir(), `circles-bench-backfill-${RECORDS}.car`)
  const meta = `${car}.json`
  try {
    const made = JSON.parse(await readFile(meta, 'utf8')) as Made
    await stat(car)
    if (made.records === RECORDS && Date.now() - made.madeAt < CACHE_MS) {
      progress(`repo CAR from ${new Date(made.madeAt).toISOString()}: ${car}`)
      return { car, made }
    }
  } catch {
    // none yet
  }
  const started = Date.now()
  const { did, signingKey } = JSON.parse(await runNode(MAKER, [String(RECORDS), car])) as {
    did: string
    signingKey: string
  }
  const made = { did, signingKey, records: RECORDS, madeAt: Date.now() }
  await writeFile(meta, JSON.stringify(made))
  progress(
    `made a repo of ${RECORDS} records, its CAR (${(await stat(car)).size} bytes) in ` +
      `${Date.now() - started} ms: ${car}`,
  )
  return { car, made }
}

interface RunResult {
  variant: string
  records: number
  ms: number
  readMs: number
  foldMs: number
  /** The same repo again in the same process: a long-lived worker's next repo. */
  warmMs: number
  warmReadMs: number
  warmFoldMs: number
  peakRssMb: number
  hwmMb?: number
  events?: number
  partners?: number
  skipped?: number
}

/** Runs a script of the bench in a node process of its own; returns the last line it printed. */
async function runNode(script: string, args: string[]): Promise<string> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s
  })
  const code = await new Promise<number | null>((done) => child.on('close', done))
  if (code !== 0) throw new Error(`node ${script} ${args[0]} exited with ${code}`)
  return out.trim().split('\n').at(-1) as string
}

async function runChild(variant: 'baseline' | 'ours', car: string, made: Made): Promise<RunResult> {
  return JSON.parse(await runNode(CHILD, [variant, car, made.did, made.signingKey])) as RunResult
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

async function main(): Promise<void> {
  const { car, made } = await ensureCar()
  const runs: Record<'baseline' | 'ours', RunResult[]> = { baseline: [], ours: [] }
  for (let i = 0; i < RUNS; i++) {
    // Alternated, and which goes first too: a burst of load on the shared machine hits both.
    const order = i % 2 ? (['ours', 'baseline'] as const) : (['baseline', 'ours'] as const)
    for (const variant of order) {
      const r = await runChild(variant, car, made)
      runs[variant].push(r)
      progress(
        `run ${i + 1}/${RUNS} ${variant}: ${r.records} records in ${r.ms.toFixed(0)} ms ` +
          `(read ${r.readMs.toFixed(0)}, ${variant === 'ours' ? 'decode + fold' : 'decode'} ` +
          `${r.foldMs.toFixed(0)}), ${Math.round(r.records / (r.ms / 1000))} records/s; warm ` +
          `${r.warmMs.toFixed(0)} ms (read ${r.warmReadMs.toFixed(0)}), ` +
          `${Math.round(r.records / (r.warmMs / 1000))} records/s; ` +
          `peak RSS ${r.peakRssMb.toFixed(0)} MB (VmHWM ${r.hwmMb?.toFixed(0) ?? '?'})` +
          (r.events === undefined ? '' : `, ${r.events} events for ${r.partners} partners`),
      )
    }
  }
  const rate = (r: RunResult) => r.records / (r.ms / 1000)
  const warmRate = (r: RunResult) => r.records / (r.warmMs / 1000)
  const ours = median(runs.ours.map(rate))
  const baseline = median(runs.baseline.map(rate))
  const oursWarm = median(runs.ours.map(warmRate))
  const baselineWarm = median(runs.baseline.map(warmRate))
  const records = runs.ours[0]?.records ?? 0
  if (runs.baseline.some((r) => r.records !== records)) {
    throw new Error('the baseline and ours did not read the same records')
  }
  progress(
    `medians: ours ${Math.round(ours)} records/s (read ${median(runs.ours.map((r) => r.readMs)).toFixed(0)} ms, ` +
      `decode + fold ${median(runs.ours.map((r) => r.foldMs)).toFixed(0)} ms), baseline ` +
      `${Math.round(baseline)} records/s; warm (a second repo in the same process) ours ` +
      `${Math.round(oursWarm)} records/s, baseline ${Math.round(baselineWarm)} records/s; peak RSS ours ${Math.max(...runs.ours.map((r) => r.peakRssMb)).toFixed(0)} MB, ` +
      `baseline ${Math.max(...runs.baseline.map((r) => r.peakRssMb)).toFixed(0)} MB`,
  )
  console.log(
    JSON.stringify({
      bench: 'backfill',
      records,
      records_per_s: Math.round(ours),
      baseline_records_per_s: Math.round(baseline),
      ratio: Number((ours / baseline).toFixed(2)),
      peak_rss_mb: Math.round(Math.max(...runs.ours.map((r) => r.peakRssMb))),
      warm_records_per_s: Math.round(oursWarm),
      warm_baseline_records_per_s: Math.round(baselineWarm),
    }),
  )
}

await main()
