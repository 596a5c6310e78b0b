import { readCorpus } from '@circles/testkit'
import { decodeFrame } from '../src/fast-decoder.js'
import { syntheticCorpus } from '../test/frames.js'
import { decodeFrameStock } from '../test/stock-decoder.js'

// Decoder micro-benchmark (no network, no Redis): frames per CPU-second of the fast path against the
// stock skyware parser on the same frames, in one run, and the fast path with a bot account set (BOT_DID:
// post creates then also decode facets and reply CIDs, services/bot). Prints one JSON line last.
//   node services/firehose/dist/bench/bench-decoder.js [frames] [corpus file (testkit format)]
// Without a corpus file: a synthetic corpus (test/frames.ts). A corpus file is cycled to `frames`.

const n = Number(process.argv[2] ?? 50_000)
const corpusPath = process.argv[3]
let frames: Uint8Array[]
if (corpusPath) {
  const corpus = (await readCorpus(corpusPath)).map((f) => f.data)
  frames = Array.from({ length: n }, (_, i) => corpus[i % corpus.length] as Uint8Array)
} else frames = syntheticCorpus(n, 42)
const now = Date.now()

async function time(label: string, fn: () => Promise<number> | number): Promise<number> {
  // CPU time, not wall time: the machines are shared and busy.
  const start = process.cpuUsage()
  const events = await fn()
  const used = process.cpuUsage(start)
  const s = (used.user + used.system) / 1e6
  const rate = Math.round(n / s)
  process.stderr.write(`${label}: ${rate} frames/s (${events} events)\n`)
  return rate
}

// Warm up both paths before measuring.
for (const f of frames.slice(0, 2000)) {
  decodeFrame(f, now)
  await decodeFrameStock(f, now)
}
const stock = await time('stock', async () => {
  let e = 0
  for (const f of frames) e += (await decodeFrameStock(f, now)).events.length
  return e
})
// A DID no post mentions: what every post pays for the bot's fields, not the cost of mentions.
const withBot = { serviceDid: null, botDid: 'did:plc:ewvi7nxzyoun6zhxrhs64oiz' }
for (const f of frames.slice(0, 2000)) decodeFrame(f, now, withBot)
/** The fast path with `opts`, in frames per CPU-second. */
const fastRun = (label: string, opts?: typeof withBot) =>
  time(label, () => {
    let e = 0
    for (const f of frames) e += decodeFrame(f, now, opts).events.length
    return e
  })
// Alternated, medians of three: whichever runs first would otherwise pay the JIT's warm-up.
const fastRates: number[] = []
const botRates: number[] = []
for (let i = 0; i < 3; i++) {
  fastRates.push(await fastRun('fast'))
  botRates.push(await fastRun('fast with BOT_DID', withBot))
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1] as number
const fast = median(fastRates)
const fastBot = median(botRates)
console.log(
  JSON.stringify({
    bench: 'firehose-decoder',
    corpus: corpusPath ?? 'synthetic',
    frames: n,
    fast_frames_per_s: fast,
    stock_frames_per_s: stock,
    ratio: Math.round((fast / stock) * 10) / 10,
    fast_bot_frames_per_s: fastBot,
    bot_ratio: Math.round((fastBot / fast) * 100) / 100,
  }),
)
