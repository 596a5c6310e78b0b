// Child of bench-indexer: times topPartners in a process of its own, like the API's, so that the bench's
// heap (the million generated events it keeps for the baseline) does not put its GC pauses into the reads.
// Args: redis URL, key prefix, iterations, warm-up DIDs (comma-separated), DIDs to time.
// Prints one JSON line: { blocks: { [did]: samples in ms }, mixed: { [did]: samples in ms } }.
//
// 1. Warm-up: WARM_ROUNDS passes over other accounts of every size (~1,600 reads, about a second), so that
//    the timed reads run in code V8 has already optimized, as in an API process that has served for a
//    while. In a fresh process TurboFan compiles ~110 functions during the first reads, on background
//    threads that on two cores take the CPU that Redis and the read need: reads 38 and 150 of the median
//    account paid 1-8 ms in every run. After 6 passes (~400 reads) the median block still compiled 15
//    functions (topPartners itself took 20 ms of compiler time); after 25, five small ones (--trace-opt,
//    2026-11-22).
// 2. Blocks: each DID `iterations` times in a row, in the order given. The parent puts the median account
//    first: 200 back-to-back reads of the busiest account leave compiler and collector work behind that
//    delayed the next few dozen reads by 1-5 ms, which is that block's cost, not the next account's.
// 3. Mixed: the DIDs in turn, `iterations` rounds: a median read right after a heavy one, as an API serving
//    both sees it. The parent prints it beside the blocks' figures.
import { createIndexReader } from '@circles/interaction-index'
import { createSchema } from '@circles/redis-schema'
import { Redis } from 'ioredis'

const WARM_ROUNDS = 25

const [url, prefix, iterations, warm, ...dids] = process.argv.slice(2)
const n = Number(iterations)
const redis = new Redis(url as string)
const schema = createSchema(prefix as string)

async function time(did: string): Promise<number> {
  // a fresh reader each time: no DID cache, nothing warm but Redis itself
  const reader = createIndexReader(redis, schema)
  const t = performance.now()
  await reader.topPartners({
    did,
    direction: 'both',
    windowHours: 48,
    weights: { like: 1, repost: 2, reply: 3, quote: 3 },
    limit: 50,
  })
  return performance.now() - t
}

try {
  const others = (warm as string).split(',').filter((d) => d !== '')
  for (let r = 0; r < WARM_ROUNDS; r++) for (const did of others) await time(did)
  const blocks: Record<string, number[]> = {}
  for (const did of dids) {
    const samples: number[] = []
    for (let i = 0; i < n; i++) samples.push(await time(did))
    blocks[did] = samples
  }
  const mixed: Record<string, number[]> = Object.fromEntries(dids.map((d) => [d, []]))
  for (let i = 0; i < n; i++) for (const did of dids) mixed[did]?.push(await time(did))
  process.stdout.write(`${JSON.stringify({ blocks, mixed })}\n`)
} finally {
  redis.disconnect()
}
